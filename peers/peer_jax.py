"""JAX peers: Diffrax (ODE problems, neural SDE, VirtualBrownianTree queries).

Methods:
  complexity, compute: ``recursive_checkpoint`` -- diffrax.RecursiveCheckpointAdjoint() with its
      default checkpoints; ``direct`` -- diffrax.DirectAdjoint() (full tape).
  sde: ``reversible_heun_recursive_checkpoint`` / ``reversible_heun_direct`` -- diffrax.ReversibleHeun
      with those adjoints (discretise-then-optimise, the exact gradient of the scheme).
  brownian: ``forward``, ``reversed``, ``random`` -- diffrax.VirtualBrownianTree queries, the
      whole sweep jitted as one lax.scan over the query times.

All solves use diffrax.StepTo on the grid t_k = k h (exactly N steps). The float32 problem is
solved in step units (t_k = k, field scaled by h as a float32 constant) because float32 grid
times k*h would round the step sizes by up to 1e-5 relative; float64 problems use t_k = k h.
"""

import common

common.single_thread_env()

import sys  # noqa: E402

args = common.parse_args()
PROB = common.load(args)
DTYPE = PROB.get("dtype", "float64")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", DTYPE == "float64")
jax.config.update("jax_platforms", "cpu")

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

JDT = jnp.float64 if DTYPE == "float64" else jnp.float32


def mlp_params(spec):
    shapes = common.layers(spec)
    return [(jnp.asarray(w, dtype=JDT), jnp.asarray(b, dtype=JDT))
            for w, b in common.split_params(spec["params"], shapes)]


def mlp_apply(params, y, t=None):
    if t is not None:
        tt = jnp.full(y.shape[:-1] + (1,), t, dtype=y.dtype)
        y = jnp.concatenate([y, tt], axis=-1)
    for w, b in params[:-1]:
        y = jnp.tanh(y @ w.T + b)
    w, b = params[-1]
    return y @ w.T + b


def flat(params):
    out = []
    for w, b in params:
        out += jnp.ravel(w).tolist() + jnp.ravel(b).tolist()
    return out


def adjoint(name):
    if name.endswith("recursive_checkpoint"):
        return diffrax.RecursiveCheckpointAdjoint()
    if name.endswith("direct"):
        return diffrax.DirectAdjoint()
    raise SystemExit(f"unknown Diffrax adjoint in method {name}")


def ode_problem(prob, method):
    n, h = prob["n_steps"], prob["h"]
    batch, dim = prob["batch"], prob["field"]["dim"]
    y0 = jnp.asarray(prob["y0"], dtype=JDT)
    if batch > 1:
        y0 = y0.reshape(batch, dim)
    params = mlp_params(prob["field"])
    if DTYPE == "float64":
        ts = jnp.arange(n + 1, dtype=jnp.float64) * h
        scale = None
    else:
        ts = jnp.arange(n + 1, dtype=jnp.float32)
        scale = jnp.asarray(h, dtype=jnp.float32)

    def vf(t, y, p):
        f = mlp_apply(p, y)
        return f if scale is None else scale * f

    term = diffrax.ODETerm(vf)
    adj = adjoint(method)
    mean = prob["loss"].startswith("mean")

    def loss(p, y):
        sol = diffrax.diffeqsolve(
            term, diffrax.Midpoint(), ts[0], ts[-1], None, y, args=p,
            stepsize_controller=diffrax.StepTo(ts=ts), adjoint=adj, max_steps=n,
            saveat=diffrax.SaveAt(t1=True))
        yn = sol.ys[-1]
        return jnp.mean(yn * yn) if mean else jnp.sum(yn * yn)

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return lambda: grad(params, y0)


class FixedPath(diffrax.AbstractPath):
    """A Brownian path on the uniform grid given by its cumulative values W(t_k)."""

    cum: jax.Array
    h: float
    t0: float = 0.0
    t1: float = 1.0

    def evaluate(self, t0, t1=None, left=True):
        k0 = jnp.round(t0 / self.h).astype(jnp.int32)
        if t1 is None:
            return self.cum[k0]
        k1 = jnp.round(t1 / self.h).astype(jnp.int32)
        return self.cum[k1] - self.cum[k0]


def sde_problem(prob, method, mode):
    import lineax as lx

    n, h = prob["n_steps"], prob["h"]
    batch, dim = prob["batch"], prob["drift"]["dim"]
    y0 = jnp.asarray(prob["y0"], dtype=JDT)
    params = (mlp_params(prob["drift"]), mlp_params(prob["diffusion"]))
    ts = jnp.arange(n + 1, dtype=jnp.float64) * h

    def drift(t, y, p):
        return mlp_apply(p[0], y.reshape(batch, dim), t).reshape(-1)

    def diffusion(t, y, p):
        return lx.DiagonalLinearOperator(mlp_apply(p[1], y.reshape(batch, dim), t).reshape(-1))

    if mode == "check":
        inc = jnp.asarray(prob["increments"], dtype=JDT)
        cum = jnp.concatenate([jnp.zeros((1, batch * dim), JDT), jnp.cumsum(inc, axis=0)])
        path_of = lambda key: FixedPath(cum, h)  # noqa: E731
    else:
        path_of = lambda key: diffrax.VirtualBrownianTree(  # noqa: E731
            0.0, 1.0, tol=h / 2, shape=(batch * dim,), key=key,
            levy_area=diffrax.BrownianIncrement)
    adj = adjoint(method)

    def loss(p, y, key):
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift),
                                  diffrax.ControlTerm(diffusion, path_of(key)))
        sol = diffrax.diffeqsolve(
            terms, diffrax.ReversibleHeun(), 0.0, 1.0, None, y, args=p,
            stepsize_controller=diffrax.StepTo(ts=ts), adjoint=adj, max_steps=n,
            saveat=diffrax.SaveAt(t1=True))
        yn = sol.ys[-1]
        return jnp.sum(yn * yn)

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 10_000))
    return lambda: grad(params, y0, next(keys))


def brownian(prob, order, mode, reps):
    shape = (prob["batch"], prob["channels"])
    q = jnp.asarray(common.brownian_queries(prob, order), dtype=jnp.float64)

    @jax.jit
    def sweep(key):
        tree = diffrax.VirtualBrownianTree(0.0, 1.0, tol=prob["h"] / 2, shape=shape, key=key,
                                           levy_area=diffrax.BrownianIncrement)

        def body(c, ab):
            return c, tree.evaluate(ab[0], ab[1])

        return jax.lax.scan(body, 0, q)[1]

    keys = iter(jax.random.split(jax.random.PRNGKey(1), reps + 2))
    w = sweep(next(keys)).block_until_ready()
    out = {"variance_over_h": float(jnp.var(w)) / prob["h"]}
    if mode == "time":
        out["times"] = common.time_reps(lambda: sweep(next(keys)).block_until_ready(), reps)
    return out


def main():
    out = {"library": "jax", "problem": args.problem, "method": args.method,
           "versions": versions()}
    if args.problem == "brownian":
        jax.config.update("jax_enable_x64", True)
        out.update(brownian(PROB, args.method, args.mode, args.reps))
        common.emit(out)
        return
    if args.problem in ("complexity", "compute"):
        run = ode_problem(PROB, args.method)
    elif args.problem == "sde":
        run = sde_problem(PROB, args.method, args.mode)
    else:
        raise SystemExit(f"no Diffrax peer for {args.problem}")

    def block():
        r = run()
        jax.block_until_ready(r)
        return r

    (loss, (gp, gy)) = block()  # compile + warm-up
    if args.mode == "check":
        if args.problem == "sde":
            gflat = flat(gp[0]) + flat(gp[1])
        else:
            gflat = flat(gp)
        out.update(loss=float(loss), grad_y0=jnp.ravel(gy).tolist(), grad_params=gflat)
    else:
        out.update(times=common.time_reps(block, args.reps), loss=float(loss))
    common.emit(out)


def versions():
    import importlib.metadata as md

    return {p: md.version(p) for p in ("jax", "jaxlib", "diffrax", "equinox", "lineax")}


if __name__ == "__main__":
    sys.exit(main())
