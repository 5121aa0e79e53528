//! The SDE-GAN experiment (docs/src/sde.md): a neural SDE generator against a neural CDE critic
//! on a time-dependent Ornstein–Uhlenbeck process, over several network seeds.

use crate::fits::{mean_sd, pm};
use crate::report::{self, BenchResult, Series, Table};
use crate::Ctx;
use revode_sde::gan::{GanConfig, OuProcess, Samples, SdeGan};
use revode_sde::stats::{ks_two_sample, mean_var};
use serde::Serialize;
use std::time::Instant;

#[derive(Serialize, Clone)]
struct Marginal {
    time: f64,
    ks: f64,
    mean_real: f64,
    mean_generated: f64,
    var_real: f64,
    var_generated: f64,
}

impl Marginal {
    /// Generated minus real mean, relative to max(|mean|, sd) of the real marginal.
    fn mean_error(&self) -> f64 {
        (self.mean_generated - self.mean_real) / self.var_real.sqrt().max(self.mean_real.abs())
    }
    /// Relative variance error.
    fn var_error(&self) -> f64 {
        (self.var_generated - self.var_real) / self.var_real
    }
    /// The acceptance: KS ≤ 0.1, mean and variance within 10 %.
    fn accepted(&self) -> bool {
        self.ks <= 0.1 && self.mean_error().abs() <= 0.1 && self.var_error().abs() <= 0.1
    }
}

/// Marginal statistics of generated against real paths at four times (first, ⅓, ⅔, last).
fn marginals(real: &Samples, fake: &Samples) -> Vec<Marginal> {
    let last = real.times.len() - 1;
    [0, last / 3, 2 * last / 3, last]
        .iter()
        .map(|&k| {
            let (r, f) = (real.marginal(k), fake.marginal(k));
            let ((mr, vr), (mf, vf)) = (mean_var(&r), mean_var(&f));
            Marginal {
                time: real.times[k],
                ks: ks_two_sample(&r, &f).statistic,
                mean_real: mr,
                mean_generated: mf,
                var_real: vr,
                var_generated: vf,
            }
        })
        .collect()
}

/// How long each seed trains.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Wall-clock minutes (depends on the machine and its load).
    Minutes(f64),
    /// Generator steps (reproducible anywhere).
    Steps(usize),
}

/// Settings of an SDE-GAN bench run (the defaults are `GanConfig::default()`'s and a decay of
/// the learning rates to a tenth).
#[derive(Clone, Debug)]
pub struct GanRun {
    /// Normalise the data by a least-squares line in time.
    pub detrend: bool,
    /// Seeds of the networks' initial parameters, one training run each.
    pub seeds: Vec<u64>,
    /// The learning rates decay linearly over the budget to `lr_final ×` the configured ones.
    pub lr_final: f64,
    /// Model-time length of the generator's Brownian path.
    pub horizon: f64,
    /// Training budget of each seed.
    pub budget: Budget,
}

impl Default for GanRun {
    fn default() -> Self {
        let config = GanConfig::default();
        GanRun {
            detrend: config.detrend,
            seeds: vec![7],
            lr_final: 0.1,
            horizon: config.horizon,
            budget: Budget::Steps(2300),
        }
    }
}

#[derive(Serialize)]
struct SeedResult {
    seed: u64,
    steps: usize,
    seconds: f64,
    accepted: bool,
    marginals: Vec<Marginal>,
}

struct Curves {
    wasserstein: Vec<(f64, f64)>,
    penalty: Vec<(f64, f64)>,
    ks: Vec<Vec<(f64, f64)>>,
    fake: Samples,
}

/// Trains one seed to its budget; returns its result and curves.
fn train(
    real: &Samples,
    config: &GanConfig,
    run: &GanRun,
    seed: u64,
    bar: &indicatif::ProgressBar,
) -> BenchResult<(SeedResult, Curves, usize)> {
    let e = |e: revode_core::Error| e.to_string();
    let mut gan = SdeGan::new(config.clone(), real, seed).map_err(e)?;
    let start = Instant::now();
    let progress = |steps: usize| match run.budget {
        Budget::Minutes(m) => start.elapsed().as_secs_f64() / (60.0 * m),
        Budget::Steps(n) => steps as f64 / n as f64,
    };
    let (mut wasserstein, mut penalty) = (Vec::new(), Vec::new());
    let mut ks_curves: Vec<Vec<(f64, f64)>> = vec![Vec::new(); 4];
    let (mut averaging, mut stored, mut next_eval) = (false, 0, 0.1);
    loop {
        let p = progress(wasserstein.len());
        if p >= 1.0 {
            break;
        }
        if !averaging && p > 0.5 {
            gan.start_averaging();
            averaging = true;
        }
        gan.set_learning_rate_scale(1.0 - (1.0 - run.lr_final) * p)
            .map_err(e)?;
        let s = gan.train_step(real, 3).map_err(e)?;
        stored = s.stored_states;
        let step = wasserstein.len() as f64 + 1.0;
        wasserstein.push((step, s.wasserstein));
        penalty.push((step, s.penalty));
        // Marginals of 2048 generated paths every tenth of the budget.
        if progress(wasserstein.len()) >= next_eval {
            next_eval += 0.1;
            let fake = gan.sample(2048, 98).map_err(e)?;
            for (k, m) in ks_curves.iter_mut().zip(marginals(real, &fake)) {
                k.push((step, m.ks));
            }
        }
        bar.set_position((100.0 * progress(wasserstein.len()).min(1.0)) as u64);
    }
    let seconds = start.elapsed().as_secs_f64();
    let c = Curves {
        wasserstein,
        penalty,
        ks: ks_curves,
        fake: gan.sample(8192, 99).map_err(e)?,
    };
    let m = marginals(real, &c.fake);
    let result = SeedResult {
        seed,
        steps: c.wasserstein.len(),
        seconds,
        accepted: m.iter().all(Marginal::accepted),
        marginals: m,
    };
    Ok((result, c, stored))
}

/// The SDE-GAN on the time-dependent Ornstein–Uhlenbeck process, one run per seed.
pub fn sde_gan(ctx: &Ctx, run: &GanRun) -> BenchResult<()> {
    let e = |e: revode_core::Error| e.to_string();
    let real = OuProcess::default().sample(8192, 1).map_err(e)?;
    let config = GanConfig {
        detrend: run.detrend,
        horizon: run.horizon,
        ..GanConfig::default()
    };
    let mut results = Vec::new();
    let mut first: Option<Curves> = None;
    let mut stored = 0;
    for &seed in &run.seeds {
        let bar = ctx.bar(100, &format!("GAN seed {seed} %"));
        let (r, c, s) = train(&real, &config, run, seed, &bar)?;
        bar.finish_and_clear();
        stored = s;
        results.push(r);
        first.get_or_insert(c);
    }
    let Some(curves) = first else {
        return Err("sde-gan needs at least one seed".into());
    };
    let mut per_seed = Table::new(&[
        "seed",
        "steps",
        "time",
        "KS (t = 0 / 21 / 42 / 63)",
        "mean error",
        "variance error",
        "accepted",
    ]);
    let join = |r: &SeedResult, f: &dyn Fn(&Marginal) -> String| {
        r.marginals.iter().map(f).collect::<Vec<_>>().join(" / ")
    };
    for r in &results {
        per_seed.row(vec![
            r.seed.to_string(),
            r.steps.to_string(),
            format!("{:.0} s", r.seconds),
            join(r, &|m| format!("{:.3}", m.ks)),
            join(r, &|m| format!("{:+.1} %", 100.0 * m.mean_error())),
            join(r, &|m| format!("{:+.1} %", 100.0 * m.var_error())),
            if r.accepted { "yes" } else { "no" }.into(),
        ]);
    }
    // Mean ± sd over seeds, per observation time.
    let mut summary = Table::new(&[
        "t",
        "KS",
        "mean error",
        "variance error",
        "abs. variance error",
    ]);
    let mut rows = Vec::new();
    for k in 0..results[0].marginals.len() {
        let col = |f: &dyn Fn(&Marginal) -> f64| -> Vec<f64> {
            results.iter().map(|r| f(&r.marginals[k])).collect()
        };
        let (ks, me, ve) = (
            col(&|m| m.ks),
            col(&|m| 100.0 * m.mean_error()),
            col(&|m| 100.0 * m.var_error()),
        );
        let abs_ve: Vec<f64> = ve.iter().map(|v| v.abs()).collect();
        summary.row(vec![
            format!("{:.0}", results[0].marginals[k].time),
            pm(&ks, |v| format!("{v:.3}")),
            pm(&me, |v| format!("{v:.1} %")),
            pm(&ve, |v| format!("{v:.1} %")),
            pm(&abs_ve, |v| format!("{v:.1} %")),
        ]);
        let ((ks_m, ks_sd), (me_m, me_sd), (ve_m, ve_sd), (ave_m, ave_sd)) =
            (mean_sd(&ks), mean_sd(&me), mean_sd(&ve), mean_sd(&abs_ve));
        rows.push(serde_json::json!({
            "time": results[0].marginals[k].time,
            "ks_mean": ks_m, "ks_sd": ks_sd,
            "mean_error_pct_mean": me_m, "mean_error_pct_sd": me_sd,
            "var_error_pct_mean": ve_m, "var_error_pct_sd": ve_sd,
            "abs_var_error_pct_mean": ave_m, "abs_var_error_pct_sd": ave_sd,
        }));
    }
    let met = results.iter().filter(|r| r.accepted).count();
    let budget = match run.budget {
        Budget::Minutes(m) => format!("{m} minutes of training per seed"),
        Budget::Steps(n) => format!("{n} generator steps per seed"),
    };
    let lipschitz = match config.gradient_penalty {
        Some(l) => format!("gradient penalty λ = {l}"),
        None => format!("weight clipping ±{}", config.clip),
    };
    ctx.emit(
        "sde-gan",
        &format!(
            "## SDE-GAN on the Ornstein–Uhlenbeck process (docs/src/sde.md)\n\n\
             dX = (0.02t − 0.1X)dt + 0.4(1 + t/63)dW, X0 ~ U[−1, 1], 8192 paths × 64 times on \
             [0, 63]. Generator: neural SDE (hidden {}, MLPs width {}, tanh-bounded drift and \
             diffusion), reversible Heun, reversible gradient with the Brownian path regenerated \
             backwards (peak stored states {stored}). Critic: neural CDE (hidden {}, width {}), \
             {lipschitz}. Adam (β₁ = {}) with learning rates {} (generator) and {} (critic); \
             two critic steps per generator step; weight averaging of the generator over the \
             second half; learning rates decayed linearly to {} × over the budget; model-time \
             horizon {}. Data normalised by {}; batch {} in {} chunks over {} threads; {budget}. \
             Marginals of 8192 generated paths against the 8192 real ones at t = 0, 21, 42, 63. \
             Mean error: generated − real mean over max(|mean|, sd) of the real marginal; \
             variance error: relative. Acceptance (every time: KS ≤ 0.1, both errors within \
             10 %) met by {met} of {} seeds.\n\nPer seed:\n\n{}\n\nMean ± sample sd over the seeds \
             {}:\n\n{}\n\nPlots (`sde_gan_loss.svg`, `sde_gan_ks.svg`, `sde_gan_paths.svg`) show \
             seed {}.\n",
            config.hidden,
            config.width,
            config.disc_hidden,
            config.disc_width,
            config.adam_beta1,
            config.lr_generator,
            config.lr_discriminator,
            run.lr_final,
            config.horizon,
            if run.detrend {
                "a least-squares line in time and the residuals' deviation"
            } else {
                "the overall mean and deviation"
            },
            config.batch,
            config.chunks,
            rayon::current_num_threads(),
            results.len(),
            per_seed.render(),
            run.seeds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            summary.render(),
            results[0].seed,
        ),
    )?;
    report::write_json(
        &ctx.out,
        "sde_gan.json",
        &serde_json::json!({ "seeds": results, "summary": rows, "accepted": met }),
    )?;
    plots(ctx, &real, &curves)
}

fn plots(ctx: &Ctx, real: &Samples, c: &Curves) -> BenchResult<()> {
    report::plot_lines(
        &ctx.out.join("sde_gan_loss.svg"),
        "SDE-GAN critic: Wasserstein estimate and gradient penalty",
        "step",
        "value",
        &[
            Series {
                label: "mean D(real) − mean D(fake)".into(),
                points: c.wasserstein.clone(),
            },
            Series {
                label: "gradient penalty".into(),
                points: c.penalty.clone(),
            },
        ],
    )?;
    let labels = ["t = 0", "t = 21", "t = 42", "t = 63"];
    report::plot_lines(
        &ctx.out.join("sde_gan_ks.svg"),
        "SDE-GAN: KS distance of generated marginals during training (2048 paths)",
        "step",
        "KS distance",
        &c.ks
            .iter()
            .zip(labels)
            .map(|(points, l)| Series {
                label: l.into(),
                points: points.clone(),
            })
            .collect::<Vec<_>>(),
    )?;
    let paths = |s: &Samples, label: &str, n: usize| -> Vec<Series> {
        (0..n)
            .map(|p| Series {
                label: if p == 0 {
                    label.to_string()
                } else {
                    String::new()
                },
                points: s
                    .times
                    .iter()
                    .zip(&s.values[p * s.times.len()..(p + 1) * s.times.len()])
                    .map(|(&t, &v)| (t, v))
                    .collect(),
            })
            .collect()
    };
    let mut lines = paths(real, "real", 8);
    lines.extend(paths(&c.fake, "generated", 8));
    report::plot_lines(
        &ctx.out.join("sde_gan_paths.svg"),
        "Sample paths: real vs generated",
        "t",
        "X",
        &lines,
    )
}
