"""PyTorch peers: torchdiffeq (ODE problems), torchsde (neural SDE, Brownian queries).

Methods:
  complexity, compute: ``backprop`` -- torchdiffeq.odeint, method 'midpoint', fixed grid,
      gradient by backpropagation through the solver's operations (full tape).
  sde: ``adjoint_reversible_heun`` -- torchsde.sdeint_adjoint, method 'reversible_heun',
      adjoint_method 'adjoint_reversible_heun' (the reversible adjoint);
      ``backprop_reversible_heun`` -- torchsde.sdeint with method 'reversible_heun' (full tape).
  brownian: ``forward``, ``reversed``, ``random`` -- torchsde.BrownianInterval queries.
  cde: ``backprop`` -- torchcde.cdeint(adjoint=False, method 'midpoint') on the knot grid over a
      torchcde.LinearInterpolation whose intervals are closed on the left (see cde_problem).
"""

import common

common.single_thread_env()

import math  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class Mlp(torch.nn.Module):
    """Linear -> tanh (-> Linear -> tanh)* -> Linear, weights from the exported flat vector."""

    def __init__(self, spec, dtype):
        super().__init__()
        shapes = common.layers(spec)
        self.time_input = spec["time_input"]
        self.lins = torch.nn.ModuleList()
        for (w, b), (o, i) in zip(common.split_params(spec["params"], shapes), shapes):
            lin = torch.nn.Linear(i, o, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(w, dtype=dtype))
                lin.bias.copy_(torch.tensor(b, dtype=dtype))
            self.lins.append(lin)

    def forward(self, t, y):
        if self.time_input:
            tt = torch.full(y.shape[:-1] + (1,), float(t), dtype=y.dtype)
            y = torch.cat([y, tt], dim=-1)
        for lin in self.lins[:-1]:
            y = torch.tanh(lin(y))
        return self.lins[-1](y)

    def flat_grad(self):
        out = []
        for lin in self.lins:
            out += lin.weight.grad.reshape(-1).tolist() + lin.bias.grad.tolist()
        return out


def ode_problem(prob, method):
    import torchdiffeq

    if method != "backprop":
        raise SystemExit(f"torchdiffeq method {method} not supported (backprop)")
    dtype = DTYPES[prob["dtype"]]
    field = Mlp(prob["field"], dtype)
    batch, dim = prob["batch"], prob["field"]["dim"]
    y0 = torch.tensor(prob["y0"], dtype=dtype).reshape(batch, dim) if batch > 1 else \
        torch.tensor(prob["y0"], dtype=dtype)
    n, h = prob["n_steps"], prob["h"]
    # The fixed grid t_k = k h in float64 (steps as revode's); the state keeps its dtype.
    grid = torch.arange(n + 1, dtype=torch.float64) * h
    t = torch.tensor([prob["t0"], prob["t1"]], dtype=torch.float64)
    grid[-1] = t[-1]
    mean = prob["loss"].startswith("mean")

    def run():
        field.zero_grad(set_to_none=True)
        y = y0.clone().requires_grad_(True)
        ys = torchdiffeq.odeint(
            field, y, t, method="midpoint",
            options={"grid_constructor": lambda f, y0_, t_: grid},
        )
        yn = ys[-1]
        loss = (yn * yn).mean() if mean else (yn * yn).sum()
        loss.backward()
        return loss, y

    return field, run


class FixedIncrements:
    """A Brownian path on a uniform grid, given by its increments: W(t_b) - W(t_a) for grid
    times t_a, t_b (either order), as torchsde's solvers and adjoint query it."""

    def __init__(self, increments, h, shape, dtype):
        w = torch.tensor(increments, dtype=dtype).reshape((len(increments),) + shape)
        self.cum = torch.cat([torch.zeros((1,) + shape, dtype=dtype), torch.cumsum(w, 0)])
        self.inc = w
        self.h = h
        self.shape = shape
        self.dtype = dtype
        self.device = torch.device("cpu")
        self.levy_area_approximation = "none"

    def _index(self, t):
        k = float(t) / self.h
        r = round(k)
        if abs(k - r) > 1e-6:
            raise ValueError(f"time {float(t)} is not on the grid")
        return r

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        a, b = self._index(ta), self._index(tb)
        if b == a + 1:
            return self.inc[a]
        if a == b + 1:
            return -self.inc[b]
        return self.cum[b] - self.cum[a]


class NeuralSde(torch.nn.Module):
    noise_type = "diagonal"
    sde_type = "stratonovich"

    def __init__(self, prob, dtype):
        super().__init__()
        self.drift = Mlp(prob["drift"], dtype)
        self.diffusion = Mlp(prob["diffusion"], dtype)

    def f(self, t, y):
        return self.drift(t, y)

    def g(self, t, y):
        return self.diffusion(t, y)


def sde_problem(prob, method, mode):
    import torchsde

    dtype = DTYPES[prob["dtype"]]
    sde = NeuralSde(prob, dtype)
    batch, dim = prob["batch"], prob["drift"]["dim"]
    y0 = torch.tensor(prob["y0"], dtype=dtype).reshape(batch, dim)
    ts = torch.tensor([prob["t0"], prob["t1"]], dtype=dtype)
    h = prob["h"]
    if mode == "check":
        def make_bm():
            return FixedIncrements(prob["increments"], h, (batch, dim), dtype)
    else:
        # Timing: torchsde's own Brownian path of the same size, new for each gradient.
        seed = [0]

        def make_bm():
            seed[0] += 1
            return torchsde.BrownianInterval(
                t0=prob["t0"], t1=prob["t1"], size=(batch, dim), dtype=dtype,
                entropy=seed[0], dt=h, levy_area_approximation="none")

    def run():
        sde.zero_grad(set_to_none=True)
        y = y0.clone().requires_grad_(True)
        bm = make_bm()
        if method == "adjoint_reversible_heun":
            ys = torchsde.sdeint_adjoint(sde, y, ts, bm=bm, dt=h, method="reversible_heun",
                                         adjoint_method="adjoint_reversible_heun")
        elif method == "backprop_reversible_heun":
            ys = torchsde.sdeint(sde, y, ts, bm=bm, dt=h, method="reversible_heun")
        else:
            raise SystemExit(f"torchsde method {method} not supported")
        yn = ys[-1]
        loss = (yn * yn).sum()
        loss.backward()
        return loss, y

    def flat_grad():
        return sde.drift.flat_grad() + sde.diffusion.flat_grad()

    return flat_grad, run


def brownian(prob, order, mode, reps):
    import torchsde

    shape = (prob["batch"], prob["channels"])
    queries = common.brownian_queries(prob, order)
    seed = [0]

    def sweep(collect=None):
        seed[0] += 1
        bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=shape, dtype=torch.float64,
                                       entropy=seed[0], dt=prob["h"],
                                       levy_area_approximation="none")
        for a, b in queries:
            w = bm(a, b)
            if collect is not None:
                collect.append(w)

    incs = []
    sweep(incs)  # warm-up, and the statistics check
    w = torch.stack(incs)
    var_over_h = float(w.var(unbiased=False)) / prob["h"]
    if mode == "check":
        return {"variance_over_h": var_over_h}
    return {"times": common.time_reps(sweep, reps), "variance_over_h": var_over_h}


def cde_problem(prob, method):
    """The neural-CDE classifier step with torchcde.

    revode's step k uses the data increment x_{k+1} - x_k as the control of every midpoint
    stage. torchcde's linear path gives the same derivative inside interval k, but at the knot
    t_k itself its bucketize picks interval k - 1; the subclass below picks interval k there
    (left-closed intervals), which is all that differs from torchcde's LinearInterpolation.
    """
    import torchcde

    if method != "backprop":
        raise SystemExit(f"torchcde method {method} not supported (backprop)")
    dt = torch.float64
    b, h, ch, k, w = prob["batch"], prob["hidden"], prob["channels"], prob["classes"], prob["width"]
    knots = torch.tensor(prob["knots"], dtype=dt)
    x = torch.tensor(prob["values"], dtype=dt).reshape(len(knots), b, ch).permute(1, 0, 2)
    labels = torch.tensor(prob["labels"], dtype=torch.long)

    class LeftClosedLinear(torchcde.LinearInterpolation):
        def _interpret_t(self, t):
            t = torch.as_tensor(t, dtype=self._derivs.dtype, device=self._derivs.device)
            maxlen = self._derivs.size(-2) - 1
            index = torch.bucketize(t.detach(), self._t.detach(), right=True).sub(1)
            index = index.clamp(0, maxlen)
            return t - self._t[index], index

    path = LeftClosedLinear(torchcde.linear_interpolation_coeffs(x, t=knots), t=knots)
    flat = prob["params"]
    at = [0]

    def linear(i, o):
        lin = torch.nn.Linear(i, o, dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(flat[at[0]:at[0] + o * i], dtype=dt).reshape(o, i))
            lin.bias.copy_(torch.tensor(flat[at[0] + o * i:at[0] + o * i + o], dtype=dt))
        at[0] += o * i + o
        return lin

    zeta = linear(ch, h)
    l1, l2 = linear(h, w), linear(w, h * ch)
    readout = linear(h, k)
    assert at[0] == len(flat)

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2 = l1, l2

        def forward(self, t, z):
            return torch.tanh(self.l2(torch.tanh(self.l1(z)))).view(z.shape[0], h, ch)

    field = Field()
    mods = [zeta, l1, l2, readout]

    def run():
        for m in mods:
            m.zero_grad(set_to_none=True)
        z0 = zeta(path.evaluate(knots[0]))
        zs = torchcde.cdeint(X=path, func=field, z0=z0, t=knots[[0, -1]], adjoint=False,
                             method="midpoint",
                             options={"grid_constructor": lambda f, y0, t: knots})
        loss = torch.nn.functional.cross_entropy(readout(zs[:, -1]), labels)
        loss.backward()
        return loss, None

    def flat_grad():
        out = []
        for m in mods:
            out += m.weight.grad.reshape(-1).tolist() + m.bias.grad.tolist()
        return out

    return flat_grad, run


def main():
    args = common.parse_args()
    prob = common.load(args)
    out = {"library": "torch", "problem": args.problem, "method": args.method,
           "versions": versions()}
    if args.problem == "brownian":
        out.update(brownian(prob, args.method, args.mode, args.reps))
        common.emit(out)
        return
    if args.problem in ("complexity", "compute"):
        field, run = ode_problem(prob, args.method)
        flat_grad = field.flat_grad
    elif args.problem == "sde":
        flat_grad, run = sde_problem(prob, args.method, args.mode)
    elif args.problem == "cde":
        flat_grad, run = cde_problem(prob, args.method)
    else:
        raise SystemExit(f"no torch peer for {args.problem}")
    loss, y = run()
    if args.mode == "check":
        gy = [] if y is None else y.grad.reshape(-1).tolist()
        out.update(loss=float(loss), grad_y0=gy, grad_params=flat_grad())
    else:
        out.update(times=common.time_reps(run, args.reps), loss=float(loss))
    if not all(math.isfinite(v) for v in [float(loss)]):
        out["error"] = "non-finite loss"
    common.emit(out)


def versions():
    import importlib.metadata as md

    return {p: md.version(p) for p in ("torch", "torchdiffeq", "torchsde", "torchcde")}


if __name__ == "__main__":
    main()
