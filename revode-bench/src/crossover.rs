//! The crossover of the time–memory frontier: for every memory budget, the fastest exact
//! gradient method that fits, and where a reversible method is that fastest one.
//!
//! Pure functions on measured points (no timing here), unit-tested with fixed numbers.

use serde::Serialize;

/// One measured exact gradient method, as the crossover sees it.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// Method label.
    pub label: &'a str,
    /// Whether the method is reversible (plain or checkpointed-reversible).
    pub reversible: bool,
    /// Memory it needs (stored states or peak bytes).
    pub memory: f64,
    /// Time per gradient in each timed round (interleaved rounds, same index = same round).
    pub times: &'a [f64],
}

impl Candidate<'_> {
    fn best(&self) -> f64 {
        self.times.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// A range of memory budgets `[from, to)` with one fastest method.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segment {
    /// Smallest budget of the range.
    pub from: f64,
    /// First budget beyond the range (`None`: unbounded).
    pub to: Option<f64>,
    /// The fastest exact method that fits (minimum time over rounds).
    pub winner: String,
    /// Whether the winner is reversible.
    pub reversible_wins: bool,
    /// The fastest fitting method of the other kind (non-reversible when a reversible method
    /// wins, reversible otherwise), if any fits.
    pub rival: Option<String>,
    /// Rival's minimum time ÷ winner's minimum time (≥ 1).
    pub ratio: Option<f64>,
    /// Smallest and largest per-round ratio (rounds paired by index): the spread.
    pub ratio_spread: Option<(f64, f64)>,
}

/// The fastest exact method for every memory budget, as consecutive ranges (ranges with the
/// same winner and rival are merged). Budgets below the smallest memory fit nothing.
pub fn segments(cands: &[Candidate<'_>]) -> Vec<Segment> {
    let usable: Vec<&Candidate<'_>> = cands
        .iter()
        .filter(|c| c.memory.is_finite() && c.best().is_finite())
        .collect();
    let mut budgets: Vec<f64> = usable.iter().map(|c| c.memory).collect();
    budgets.sort_by(f64::total_cmp);
    budgets.dedup();
    let mut out: Vec<Segment> = Vec::new();
    for (i, &b) in budgets.iter().enumerate() {
        let fits = |rev: Option<bool>| {
            usable
                .iter()
                .filter(|c| c.memory <= b && rev.is_none_or(|r| c.reversible == r))
                .min_by(|x, y| x.best().total_cmp(&y.best()))
                .copied()
        };
        let Some(winner) = fits(None) else { continue };
        let rival = fits(Some(!winner.reversible));
        let ratio = rival.map(|r| r.best() / winner.best());
        let ratio_spread = rival.and_then(|r| {
            let per: Vec<f64> = r
                .times
                .iter()
                .zip(winner.times)
                .map(|(a, b)| a / b)
                .collect();
            (!per.is_empty()).then(|| {
                per.iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                        (lo.min(x), hi.max(x))
                    })
            })
        });
        let seg = Segment {
            from: b,
            to: budgets.get(i + 1).copied(),
            winner: winner.label.to_string(),
            reversible_wins: winner.reversible,
            rival: rival.map(|r| r.label.to_string()),
            ratio,
            ratio_spread,
        };
        match out.last_mut() {
            Some(last) if last.winner == seg.winner && last.rival == seg.rival => {
                last.to = seg.to;
            }
            _ => out.push(seg),
        }
    }
    out
}

/// Where reversible methods are the fastest exact ones.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Crossover {
    /// Smallest budget at which a reversible method is fastest (`None`: never fastest).
    pub from: Option<f64>,
    /// The budget from which a non-reversible method is faster again (`None`: reversible stays
    /// fastest at every larger budget, or is never fastest).
    pub below: Option<f64>,
    /// The smallest speedup of reversible over the best fitting non-reversible method inside
    /// `[from, below)`, with its rival and per-round spread (`None` if no rival fits there).
    pub least_speedup: Option<(f64, String, (f64, f64))>,
    /// The largest such speedup.
    pub most_speedup: Option<f64>,
}

/// The first range of budgets in which a reversible method is the fastest exact method.
pub fn crossover(segs: &[Segment]) -> Crossover {
    let first = segs.iter().position(|s| s.reversible_wins);
    let Some(first) = first else {
        return Crossover {
            from: None,
            below: None,
            least_speedup: None,
            most_speedup: None,
        };
    };
    let run: Vec<&Segment> = segs[first..]
        .iter()
        .take_while(|s| s.reversible_wins)
        .collect();
    let below = run.last().and_then(|s| s.to);
    let with_rival: Vec<&&Segment> = run.iter().filter(|s| s.ratio.is_some()).collect();
    let least = with_rival
        .iter()
        .min_by(|a, b| a.ratio.unwrap_or(0.0).total_cmp(&b.ratio.unwrap_or(0.0)))
        .map(|s| {
            (
                s.ratio.unwrap_or(f64::NAN),
                s.rival.clone().unwrap_or_default(),
                s.ratio_spread.unwrap_or((f64::NAN, f64::NAN)),
            )
        });
    let most = with_rival
        .iter()
        .filter_map(|s| s.ratio)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    Crossover {
        from: Some(run[0].from),
        below,
        least_speedup: least,
        most_speedup: most,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand<'a>(label: &'a str, reversible: bool, memory: f64, times: &'a [f64]) -> Candidate<'a> {
        Candidate {
            label,
            reversible,
            memory,
            times,
        }
    }

    #[test]
    fn reversible_wins_below_the_first_faster_checkpointing() {
        let pts = [
            cand("reversible", true, 1.0, &[1.0, 1.1, 1.2]),
            cand("checkpointed(2)", false, 2.0, &[5.0, 5.5, 6.0]),
            cand("checkpointed(8)", false, 8.0, &[1.5, 1.65, 1.5]),
            cand("checkpointed(44)", false, 44.0, &[0.8, 0.9, 0.85]),
            cand("direct", false, 1000.0, &[0.5, 0.6, 0.55]),
        ];
        let segs = segments(&pts);
        let winners: Vec<&str> = segs.iter().map(|s| s.winner.as_str()).collect();
        assert_eq!(
            winners,
            [
                "reversible",
                "reversible",
                "reversible",
                "checkpointed(44)",
                "direct"
            ]
        );
        assert_eq!(segs[0].ratio, None, "nothing else fits one state");
        assert_eq!(segs[1].ratio, Some(5.0));
        assert_eq!(segs[2].rival.as_deref(), Some("checkpointed(8)"));
        assert_eq!(segs[2].ratio_spread, Some((1.25, 1.5)));
        assert_eq!(segs[3].rival.as_deref(), Some("reversible"));
        assert_eq!(segs[3].ratio, Some(1.25));
        let c = crossover(&segs);
        assert_eq!(c.from, Some(1.0));
        assert_eq!(c.below, Some(44.0));
        assert_eq!(
            c.least_speedup,
            Some((1.5, "checkpointed(8)".to_string(), (1.25, 1.5)))
        );
        assert_eq!(c.most_speedup, Some(5.0));
    }

    #[test]
    fn never_fastest_when_a_smaller_method_is_faster() {
        let pts = [
            cand("checkpointed(2)", false, 2.0, &[0.9]),
            cand("reversible", true, 3.0, &[1.0]),
            cand("direct", false, 50.0, &[0.4]),
        ];
        let segs = segments(&pts);
        // [2, 3): checkpointed(2) alone; [3, 50): it beats reversible; [50, ∞): direct.
        assert_eq!(segs.len(), 3);
        assert!(segs.iter().all(|s| !s.reversible_wins));
        assert_eq!(segs[0].rival, None);
        assert_eq!(segs[1].to, Some(50.0));
        assert_eq!(segs[2].ratio, Some(2.5));
        let ratio = segs[1].ratio.expect("reversible fits from 3 on");
        assert!((ratio - 1.0 / 0.9).abs() < 1e-12);
        assert_eq!(crossover(&segs).from, None);
        assert_eq!(crossover(&segs).below, None);
    }

    #[test]
    fn reversible_fastest_at_every_budget() {
        let pts = [
            cand("reversible", true, 2.0, &[1.0, 2.0]),
            cand("direct", false, 10.0, &[3.0, 3.0]),
        ];
        let c = crossover(&segments(&pts));
        assert_eq!(c.from, Some(2.0));
        assert_eq!(c.below, None);
        assert_eq!(
            c.least_speedup,
            Some((3.0, "direct".to_string(), (1.5, 3.0)))
        );
    }
}
