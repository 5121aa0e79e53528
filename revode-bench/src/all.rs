//! `all`: every experiment, each into its own folder with its own report.md.
//!
//! With `--full`, each experiment runs in exactly the configuration whose results are committed
//! under docs/results, so `revode-bench all --full --out docs/results` regenerates every
//! committed result from the committed code (the Python peers excepted: peers/README.md). Each
//! folder's report records the single command that is equivalent to its part of the run.
//! Without `--full`, every experiment runs at its quick default settings.

/// One experiment of `all`: its folder and its arguments in the committed configuration
/// (`full`) and the quick one.
struct Job {
    folder: &'static str,
    full: &'static [&'static str],
    quick: &'static [&'static str],
}

const fn same(folder: &'static str, args: &'static [&'static str]) -> Job {
    Job {
        folder,
        full: args,
        quick: args,
    }
}

/// The committed results, in the order `all` runs them.
const JOBS: &[Job] = &[
    same("main", &[]),
    same("complexity", &["complexity"]),
    same("reconstruction", &["reconstruction"]),
    same("stability", &["stability"]),
    same("memory", &["memory"]),
    same("convergence", &["convergence"]),
    Job {
        folder: "compute",
        full: &["compute", "--full"],
        quick: &["compute"],
    },
    Job {
        folder: "white-dwarf",
        full: &["white-dwarf", "--full"],
        quick: &["white-dwarf"],
    },
    Job {
        folder: "oscillators",
        full: &["oscillators", "--full"],
        quick: &["oscillators"],
    },
    Job {
        folder: "pendulum",
        full: &["pendulum", "--full", "--lr-final", "0.1"],
        quick: &["pendulum", "--lr-final", "0.1"],
    },
    Job {
        folder: "pendulum-constant-lr",
        full: &["pendulum", "--full"],
        quick: &["pendulum"],
    },
    Job {
        folder: "spirals",
        full: &["spirals", "--seeds", "3"],
        quick: &["spirals"],
    },
    Job {
        folder: "japanese-vowels",
        full: &["japanese-vowels", "--seeds", "3"],
        quick: &["japanese-vowels", "--memory-only"],
    },
    same("brownian", &["brownian"]),
    Job {
        folder: "sde-gan",
        full: &["sde-gan", "--seeds", "3"],
        quick: &["sde-gan", "--steps", "100"],
    },
    Job {
        folder: "sde-gan-2d",
        full: &[
            "sde-gan",
            "--channels",
            "2",
            "--seeds",
            "3",
            "--steps",
            "5000",
        ],
        quick: &["sde-gan", "--channels", "2", "--steps", "100"],
    },
    same("sde-fit", &["sde-fit"]),
    same("scaling", &["scaling"]),
    same("pde-drift", &["pde-drift"]),
    Job {
        folder: "pde-memory",
        full: &["pde-memory", "--full"],
        quick: &["pde-memory"],
    },
    Job {
        folder: "pde-surrogate",
        full: &["pde-surrogate", "--seeds", "3"],
        quick: &["pde-surrogate"],
    },
    Job {
        folder: "frontier",
        full: &["frontier", "--full"],
        quick: &["frontier"],
    },
];

/// The argument lists of `all` under `out`: (folder, arguments after the program name,
/// `--out` included). `quiet` is passed on.
pub fn plan(out: &std::path::Path, full: bool, quiet: bool) -> Vec<(String, Vec<String>)> {
    JOBS.iter()
        .map(|job| {
            let dir = out.join(job.folder);
            let mut args: Vec<String> = if full { job.full } else { job.quick }
                .iter()
                .map(|s| s.to_string())
                .collect();
            if quiet {
                args.push("--quiet".into());
            }
            args.push("--out".into());
            args.push(dir.display().to_string());
            (job.folder.to_string(), args)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn every_job_parses_and_writes_its_own_folder() {
        for full in [false, true] {
            let jobs = plan(std::path::Path::new("out"), full, true);
            let mut folders: Vec<&str> = jobs.iter().map(|(f, _)| f.as_str()).collect();
            folders.sort();
            folders.dedup();
            assert_eq!(folders.len(), jobs.len(), "two jobs share a folder");
            for (folder, args) in &jobs {
                let argv = std::iter::once("revode-bench".to_string()).chain(args.clone());
                let cli = crate::Cli::try_parse_from(argv)
                    .unwrap_or_else(|e| panic!("{folder}: {args:?}: {e}"));
                assert_eq!(cli.out, std::path::Path::new("out").join(folder));
                assert!(!matches!(cli.command, Some(crate::Command::All)));
            }
        }
    }
}
