//! The SDE-GAN experiment (docs/src/sde.md): a neural SDE generator against a neural CDE critic
//! on a time-dependent Ornstein–Uhlenbeck process (one channel, or two correlated ones), over
//! several network seeds, trained by the one trainer for a budget of optimiser steps.

use crate::fits::{mean_sd, pm};
use crate::report::{self, BenchError, BenchResult, Series, Table};
use crate::Ctx;
use revode_cde::TimeSeries;
use revode_core::train::{TrainConfig, Trainer};
use revode_sde::datasets::OuProcess;
use revode_sde::gan::{GanConfig, SdeGan};
use revode_sde::stats::{compare_marginals, correlation, Marginal};
use serde::Serialize;
use std::cell::RefCell;
use std::time::Instant;

/// The worst of KS, |mean error| and |variance error| of a marginal, each over its 0.1 limit.
fn marginal_score(m: &Marginal) -> f64 {
    m.ks.max(m.mean_error().abs()).max(m.var_error().abs()) / 0.1
}

/// KS ≤ 0.1, mean and variance within 10 %.
fn marginal_accepted(m: &Marginal) -> bool {
    marginal_score(m) <= 1.0
}

/// The correlation of channels 0 and 1 at one time, generated against real.
#[derive(Serialize, Clone)]
struct Correlation {
    time: f64,
    real: f64,
    generated: f64,
}

impl Correlation {
    /// The correlation's error over its 0.1 limit.
    fn score(&self) -> f64 {
        (self.generated - self.real).abs() / 0.1
    }
    /// Within 0.1 (a tenth of a correlation's unit scale; at t = 0 the real one is 0).
    fn accepted(&self) -> bool {
        self.score() <= 1.0
    }
}

/// The four observation indices compared: first, ⅓, ⅔, last.
fn checkpoints(n: usize) -> [usize; 4] {
    let last = n - 1;
    [0, last / 3, 2 * last / 3, last]
}

/// Marginal statistics of generated against real paths at the four times, every channel.
fn marginals(real: &TimeSeries, fake: &TimeSeries) -> revode_core::Result<Vec<Marginal>> {
    compare_marginals(real, fake, &checkpoints(real.time_len()))
}

/// Channel 0–1 correlations at the four times (none for one channel).
fn correlations(real: &TimeSeries, fake: &TimeSeries) -> revode_core::Result<Vec<Correlation>> {
    if real.channels() < 2 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for k in checkpoints(real.time_len()) {
        out.push(Correlation {
            time: real.times[[0, k]],
            real: correlation(real, k, 0, 1)?,
            generated: correlation(fake, k, 0, 1)?,
        });
    }
    Ok(out)
}

/// Settings of an SDE-GAN bench run.
#[derive(Clone, Debug)]
pub struct GanRun {
    /// Normalise the data by a least-squares line in time.
    pub detrend: bool,
    /// Seeds of the networks' initial parameters, one training run each.
    pub seeds: Vec<u64>,
    /// Model-time length of the generator's Brownian path.
    pub horizon: f64,
    /// Optimiser steps per seed.
    pub steps: usize,
    /// Paths per training batch.
    pub batch: usize,
    /// Data channels (1, or 2 correlated).
    pub channels: usize,
    /// Noise correlation of the two-channel process.
    pub rho: f64,
}

#[derive(Serialize)]
struct SeedResult {
    seed: u64,
    steps: usize,
    seconds: f64,
    accepted: bool,
    marginals: Vec<Marginal>,
    correlations: Vec<Correlation>,
    /// Step whose parameters were kept (the best validation score).
    selected_step: usize,
    /// Whether the kept parameters are the running average (else the unaveraged ones).
    kept_average: bool,
    /// The validation score (`acceptance_score` on the validation paths) at each evaluation,
    /// the lower of the average's and the unaveraged parameters': (completed steps, score); at
    /// most 1 means the validation paths accept that generator.
    validation: Vec<(usize, f64)>,
    /// The average's validation scores (evaluations once averaging has begun).
    validation_average: Vec<(usize, f64)>,
    /// The unaveraged parameters' validation scores (every evaluation).
    validation_unaveraged: Vec<(usize, f64)>,
    /// The kept generator's validation score.
    validation_score: f64,
}

struct Curves {
    wasserstein: Vec<(f64, f64)>,
    penalty: Vec<(f64, f64)>,
    /// Validation scores (`acceptance_score`) of the average and of the unaveraged parameters.
    validation: [Vec<(f64, f64)>; 2],
    fake: TimeSeries,
}

/// The acceptance criterion as one number: the worst, over the compared times and channels,
/// of KS, |mean error|, |variance error| and |correlation error|, each over its limit 0.1. At
/// most 1 exactly when the acceptance is met (on the paths given: validation, for selection).
fn acceptance_score(real: &TimeSeries, fake: &TimeSeries) -> revode_core::Result<f64> {
    let m = marginals(real, fake)?
        .iter()
        .map(marginal_score)
        .fold(0.0, f64::max);
    Ok(correlations(real, fake)?
        .iter()
        .map(Correlation::score)
        .fold(m, f64::max))
}

/// The three independent samples: training paths, validation paths (model selection),
/// test paths (acceptance).
struct Data {
    train: TimeSeries,
    validation: TimeSeries,
    test: TimeSeries,
}

/// Validation evaluations per run (every 1/20 of it: the exponential average forgets in about
/// 1000 steps, so the candidates differ).
const EVALUATIONS: usize = 20;

/// Validation paths, and generated paths per evaluation: with 8192 of each a correlation's
/// sampling sd is √(2/8192) ≈ 0.016, a sixth of its 0.1 limit (2048 of each: a third).
const VALIDATION_PATHS: usize = 8192;

/// Validation scores: (completed steps, score).
type Scores = Vec<(usize, f64)>;

/// Splits the evaluation calls into the average's and the unaveraged parameters' scores: an
/// evaluation after averaging has begun scores the average, then θ (two calls at one step);
/// before, θ alone.
fn split_candidates(calls: &[(usize, f64)]) -> (Scores, Scores) {
    let (mut average, mut raw) = (Vec::new(), Vec::new());
    for (i, &c) in calls.iter().enumerate() {
        let paired_next = calls.get(i + 1).is_some_and(|n| n.0 == c.0);
        if paired_next {
            average.push(c);
        } else {
            raw.push(c);
        }
    }
    (average, raw)
}

/// Trains one seed for its steps; returns its result and curves.
fn train(
    data: &Data,
    config: &GanConfig,
    run: &GanRun,
    seed: u64,
    ctx: &Ctx,
) -> BenchResult<(SeedResult, Curves, usize)> {
    let gan = SdeGan::new(config.clone(), &data.train)?;
    let real = gan.scaled(&data.train)?;
    let mut state = gan.train_state(seed)?;
    let log = RefCell::new(Vec::with_capacity(run.steps));
    let validation = RefCell::new(Vec::new());
    let start = Instant::now();
    let config = TrainConfig {
        eval_every: (run.steps / EVALUATIONS).max(1),
        progress: ctx.progress(),
        ..gan.train_config(run.steps)
    };
    Trainer::new(config)
        .with_eval(|done, p| {
            let fake = gan.sample(p, VALIDATION_PATHS, 98)?;
            let score = acceptance_score(&data.validation, &fake)?;
            validation.borrow_mut().push((done, score));
            Ok(score)
        })
        .run(&mut state, |k, p, g| {
            let s = gan.step_gradient(k, p, g, &real, 3)?;
            log.borrow_mut().push(s);
            Ok(s.wasserstein)
        })?;
    let seconds = start.elapsed().as_secs_f64();
    let fake = gan.sample(state.final_params(), 8192, 99)?;
    let log = log.into_inner();
    let (validation_average, validation_unaveraged) = split_candidates(&validation.into_inner());
    let selected_step = state.best.as_ref().map_or(log.len(), |b| b.step);
    let validation_score = state.best.as_ref().map_or(f64::NAN, |b| b.value);
    let m = marginals(&data.test, &fake)?;
    let corr = correlations(&data.test, &fake)?;
    let result = SeedResult {
        seed,
        steps: log.len(),
        seconds,
        accepted: m.iter().all(marginal_accepted) && corr.iter().all(Correlation::accepted),
        marginals: m,
        correlations: corr,
        selected_step,
        kept_average: validation_average
            .iter()
            .any(|&(k, v)| k == selected_step && v == validation_score),
        validation: state.evals.clone(),
        validation_score,
        validation_average,
        validation_unaveraged,
    };
    let stored = log.last().map_or(0, |s| s.stored_states);
    let curves = Curves {
        wasserstein: log
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64 + 1.0, s.wasserstein))
            .collect(),
        penalty: log
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64 + 1.0, s.penalty))
            .collect(),
        validation: [&result.validation_average, &result.validation_unaveraged]
            .map(|v| v.iter().map(|&(k, s)| (k as f64, s)).collect()),
        fake,
    };
    Ok((result, curves, stored))
}

/// The SDE-GAN on the Ornstein–Uhlenbeck process, one run per seed.
pub fn sde_gan(ctx: &Ctx, run: &GanRun) -> BenchResult<()> {
    let ou = OuProcess {
        channels: run.channels,
        rho: if run.channels > 1 { run.rho } else { 0.0 },
        ..OuProcess::default()
    };
    let data = Data {
        train: ou.sample(8192, 1)?,
        validation: ou.sample(VALIDATION_PATHS, 2)?,
        test: ou.sample(8192, 3)?,
    };
    let config = GanConfig {
        detrend: run.detrend,
        horizon: run.horizon,
        batch: run.batch,
        ..GanConfig::default()
    };
    let mut results = Vec::new();
    let mut first: Option<Curves> = None;
    let mut stored = 0;
    for &seed in &run.seeds {
        let (r, c, s) = train(&data, &config, run, seed, ctx)?;
        stored = s;
        results.push(r);
        first.get_or_insert(c);
    }
    let Some(curves) = first else {
        return Err(BenchError::NoSeeds {
            experiment: "sde-gan",
        });
    };
    let two = run.channels > 1;
    let mut head = vec![
        "seed",
        "steps (kept)",
        "validation score",
        "time",
        "KS (t = 0 / 21 / 42 / 63)",
        "mean error",
        "variance error",
    ];
    if two {
        head.push("correlation gen − real");
    }
    head.push("accepted");
    let mut per_seed = Table::new(&head);
    let join = |r: &SeedResult, f: &dyn Fn(&Marginal) -> String| {
        r.marginals.iter().map(f).collect::<Vec<_>>().join(" / ")
    };
    for r in &results {
        let mut row = vec![
            r.seed.to_string(),
            format!(
                "{} ({}, {})",
                r.steps,
                r.selected_step,
                if r.kept_average {
                    "average"
                } else {
                    "unaveraged"
                }
            ),
            format!("{:.2}", r.validation_score),
            format!("{:.0} s", r.seconds),
            join(r, &|m| format!("{:.3}", m.ks)),
            join(r, &|m| format!("{:+.1} %", 100.0 * m.mean_error())),
            join(r, &|m| format!("{:+.1} %", 100.0 * m.var_error())),
        ];
        if two {
            row.push(
                r.correlations
                    .iter()
                    .map(|c| format!("{:+.3}", c.generated - c.real))
                    .collect::<Vec<_>>()
                    .join(" / "),
            );
        }
        row.push(if r.accepted { "yes" } else { "no" }.into());
        per_seed.row(row);
    }
    // Mean ± sd over seeds, per observation time and channel.
    let mut summary = Table::new(&[
        "t",
        "channel",
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
        let m0 = &results[0].marginals[k];
        summary.row(vec![
            format!("{:.0}", m0.time),
            m0.channel.to_string(),
            pm(&ks, |v| format!("{v:.3}")),
            pm(&me, |v| format!("{v:.1} %")),
            pm(&ve, |v| format!("{v:.1} %")),
            pm(&abs_ve, |v| format!("{v:.1} %")),
        ]);
        let ((ks_m, ks_sd), (me_m, me_sd), (ve_m, ve_sd), (ave_m, ave_sd)) =
            (mean_sd(&ks), mean_sd(&me), mean_sd(&ve), mean_sd(&abs_ve));
        rows.push(serde_json::json!({
            "time": m0.time, "channel": m0.channel,
            "ks_mean": ks_m, "ks_sd": ks_sd,
            "mean_error_pct_mean": me_m, "mean_error_pct_sd": me_sd,
            "var_error_pct_mean": ve_m, "var_error_pct_sd": ve_sd,
            "abs_var_error_pct_mean": ave_m, "abs_var_error_pct_sd": ave_sd,
        }));
    }
    let met = results.iter().filter(|r| r.accepted).count();
    let process = if two {
        format!(
            "two channels, dX = (0.02t − 0.1X)dt + 0.4(1 + t/63) L dW with L Lᵀ the correlation \
             matrix of ρ = {}, X0 ~ U[−1, 1]² independently",
            run.rho
        )
    } else {
        "dX = (0.02t − 0.1X)dt + 0.4(1 + t/63)dW, X0 ~ U[−1, 1]".to_string()
    };
    ctx.emit(
        "sde-gan",
        &format!(
            "## SDE-GAN on the Ornstein–Uhlenbeck process (docs/src/sde.md)\n\n\
             {process}; 64 times on [0, 63]; 8192 training paths, {VALIDATION_PATHS} validation \
             paths, 8192 test paths (independent samples). Generator: neural SDE (hidden {}, \
             MLPs width {}, tanh-bounded drift and diffusion), reversible Heun, reversible \
             gradient with the Brownian path regenerated backwards (peak stored states \
             {stored}). Critic: the neural-CDE classifier model with one output (hidden {}, width {}, reversible \
             Euler, λ = {}) over (t, Y, and the products Y_i Y_j), gradient penalty {}. One trainer step takes both \
             players' gradients at the same parameters (AdamW, β₁ = {}, learning rates {} for \
             the generator and {} for the critic as parameter groups, decayed linearly to a \
             tenth; both averaged {}); model-time horizon {}; data \
             normalised by {}; batch {} in {} chunks over {} threads; {} steps per seed. {} \
             times a run the generator, averaged and unaveraged, is scored on the validation \
             paths ({VALIDATION_PATHS} generated) by the acceptance's own measure (the worst of \
             KS, |mean error|, |variance error| and |correlation error| over the compared times \
             and channels, each over its limit 0.1; at most 1 means accepted) and the best of \
             these candidates is kept. Marginals of 8192 generated paths against the test \
             paths at t = 0, 21, 42, 63. Mean error: generated \
             − real mean over max(|mean|, sd) of the real marginal; variance error: relative. \
             Acceptance (every time and channel: KS ≤ 0.1, both errors within 10 %{}) met by \
             {met} of {} seeds.\n\nPer seed:\n\n{}\n\nMean ± sample sd over the seeds {}:\n\n{}\n\n\
             Plots (`sde_gan_loss.svg`, `sde_gan_validation.svg`, `sde_gan_paths.svg`) show seed \
             {}.\n",
            config.hidden,
            config.width,
            config.critic_hidden,
            config.critic_width,
            config.critic_lambda,
            config.gradient_penalty,
            config.adam_beta1,
            config.lr_generator,
            config.lr_critic,
            match config.average_decay {
                Some(b) => format!("exponentially with decay {b} from a quarter of the run on"),
                None => "uniformly over the second half".into(),
            },
            config.horizon,
            if run.detrend {
                "a least-squares line in time per channel and the residuals' deviation"
            } else {
                "the overall mean and deviation per channel"
            },
            config.batch,
            config.chunks,
            rayon::current_num_threads(),
            run.steps,
            EVALUATIONS,
            if two {
                "; the channels' correlation within 0.1 of the real one at every time"
            } else {
                ""
            },
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
        &serde_json::json!({
            "channels": run.channels, "rho": run.rho, "steps": run.steps,
            "seeds": results, "summary": rows, "accepted": met,
        }),
    )?;
    plots(ctx, &data.test, &curves)
}

fn plots(ctx: &Ctx, real: &TimeSeries, c: &Curves) -> BenchResult<()> {
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
    report::plot_lines(
        &ctx.out.join("sde_gan_validation.svg"),
        &format!(
            "SDE-GAN: acceptance score on the validation paths ({VALIDATION_PATHS} generated; \
             ≤ 1: accepted)"
        ),
        "step",
        "worst error / limit",
        &[
            Series {
                label: "averaged generator".into(),
                points: c.validation[0].clone(),
            },
            Series {
                label: "unaveraged generator".into(),
                points: c.validation[1].clone(),
            },
        ],
    )?;
    let times = real.times.row(0).to_vec();
    let paths = |s: &TimeSeries, label: &str, n: usize| -> Vec<Series> {
        (0..n)
            .map(|p| Series {
                label: if p == 0 {
                    label.to_string()
                } else {
                    String::new()
                },
                points: times
                    .iter()
                    .enumerate()
                    .map(|(k, &t)| (t, s.values[[p, k, 0]]))
                    .collect(),
            })
            .collect()
    };
    let mut lines = paths(real, "real", 8);
    lines.extend(paths(&c.fake, "generated", 8));
    report::plot_lines(
        &ctx.out.join("sde_gan_paths.svg"),
        "Sample paths (channel 0): real vs generated",
        "t",
        "X",
        &lines,
    )
}

#[cfg(test)]
mod tests {
    use super::split_candidates;

    #[test]
    fn paired_calls_are_the_average_then_the_unaveraged_parameters() {
        let calls = [
            (10, 5.0),
            (20, 4.0),
            (30, 3.0),
            (30, 2.5),
            (40, 2.0),
            (40, 2.2),
        ];
        let (average, raw) = split_candidates(&calls);
        assert_eq!(average, vec![(30, 3.0), (40, 2.0)]);
        assert_eq!(raw, vec![(10, 5.0), (20, 4.0), (30, 2.5), (40, 2.2)]);
    }
}
