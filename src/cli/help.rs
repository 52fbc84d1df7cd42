//! What `--help` shows beyond the options: worked examples for every leaf command, shell
//! completions, and `docs/cli.md` (the help of every command as one Markdown page).
//!
//! The examples live in one table ([`EXAMPLES`]) keyed by command path rather than in
//! `#[command(after_help = …)]` attributes spread over the argument structs, so that a test can
//! check that every leaf command has one and that each example parses.

use clap::{Command, CommandFactory};

use super::Cli;

/// Worked examples per leaf command path (`"nlm generate"`), shown at the end of its `--help`.
pub const EXAMPLES: &[(&str, &[&str])] = &[
    ("sde list", &["attractor sde list"]),
    (
        "sde check",
        &[
            "attractor sde check my_system.toml   # prints the parsed drift, diffusion and parameters",
        ],
    ),
    (
        "ddm train",
        &[
            "attractor ddm train --sde ou-rot --iters 2000 --run-dir checkpoints/ou-rot",
            "attractor ddm train --sde stuart-landau --param omega=1.5 --neurons 300 --run-dir checkpoints/sl",
            "attractor ddm train --sde my_system.toml --set lr=3e-3 --run-dir checkpoints/mine",
        ],
    ),
    (
        "ddm simulate",
        &[
            "attractor ddm simulate --run-dir checkpoints/ou-rot                  # simulate.{npy,png,json}",
            "attractor ddm simulate --run-dir checkpoints/ou-rot --target         # the target SDE, for comparison",
            "attractor ddm simulate --run-dir checkpoints/ou-rot --noise-scale 0  # the deterministic flow",
        ],
    ),
    (
        "ddm eval",
        &[
            "attractor ddm eval --run-dir checkpoints/ou-rot                      # eval.json",
            "attractor ddm eval --run-dir checkpoints/ou-rot --t-end 100 --trajectories 16",
        ],
    ),
    (
        "ddm decompose",
        &[
            "attractor ddm decompose --run-dir checkpoints/ou-rot   # decompose_*.png, decompose.json",
        ],
    ),
    (
        "fep train",
        &[
            "attractor fep train --run-dir checkpoints/fep",
            "attractor fep train --evidence 4 --beta 0.2 --networks 8 --run-dir checkpoints/fep-grid",
            "attractor fep train --patterns my_patterns.npy --rule hebbian --run-dir checkpoints/hebb",
        ],
    ),
    (
        "fep attractors",
        &["attractor fep attractors --run-dir checkpoints/fep   # attractors.npy, attractors.png"],
    ),
    (
        "fep eval",
        &[
            "attractor fep eval --run-dir checkpoints/fep                # eval.json",
            "attractor fep eval --run-dir checkpoints/fep --trials 20",
        ],
    ),
    (
        "fep run-free",
        &[
            "attractor fep run-free --run-dir checkpoints/fep-seq --steps 400",
            "attractor fep run-free --run-dir checkpoints/fep-seq --symmetric-only   # control",
        ],
    ),
    (
        "fep sweep",
        &[
            "attractor fep sweep --run-dir checkpoints/sweep                           # the full grid",
            "attractor fep sweep --evidence 1..5 --beta 0.05..1:5 --epochs 500 --run-dir checkpoints/small-sweep",
        ],
    ),
    (
        "fep recall",
        &[
            "attractor fep recall --run-dir checkpoints/fep --pattern-index 0 --pattern-index 3 --noise-sd 2",
            "attractor fep recall --run-dir checkpoints/fep --cue my_cues.npy",
        ],
    ),
    (
        "nlm train",
        &[
            "attractor nlm train --run-dir checkpoints/nlm                     # bundled MNIST digits 1, 3, 6",
            "attractor nlm train --digits '' --updates 2000 --run-dir checkpoints/nlm-all",
            "attractor nlm train --data path/to/pngs --run-dir checkpoints/mine",
        ],
    ),
    (
        "nlm generate",
        &[
            "attractor nlm generate --run-dir checkpoints/nlm                  # generate.png, 100 fresh chains",
            "attractor nlm generate --run-dir checkpoints/nlm --chains 36 --steps 5000 --npy samples.npy",
        ],
    ),
    (
        "nlm explore",
        &[
            "attractor nlm explore --run-dir checkpoints/nlm --steps 30000   # explore.png, explore_pca.png",
        ],
    ),
    (
        "nlm denoise",
        &[
            "attractor nlm denoise --run-dir checkpoints/nlm --n-test 16 --corrupt uniform:0.25",
            "attractor nlm denoise --run-dir checkpoints/nlm --input my_digit.png --corrupt mask:0.5",
        ],
    ),
    (
        "nlm eval",
        &[
            "attractor nlm eval --run-dir checkpoints/nlm                      # eval.json",
            "attractor nlm eval --run-dir checkpoints/nlm --n-gen 200 --gen-steps 2000",
        ],
    ),
    (
        "nlm summarize",
        &[
            "attractor nlm summarize --evals runs/*/eval.json --out sweep.png",
            "attractor nlm summarize --evals runs/*/eval.json --x t_age --out ageing.png",
        ],
    ),
    (
        "resume",
        &[
            "attractor resume --run-dir checkpoints/nlm                # after a crash or Ctrl-C",
            "attractor resume --run-dir checkpoints/ou-rot --until 3000",
        ],
    ),
    (
        "export",
        &[
            "attractor export --run-dir checkpoints/nlm                        # DIR/export/*.npy",
            "attractor export --run-dir checkpoints/nlm --format safetensors --out weights/",
        ],
    ),
    (
        "runs",
        &[
            "attractor runs                  # every run under checkpoints/: family, steps, state, loss, age",
            "attractor runs experiments/ --json",
        ],
    ),
    (
        "verify",
        &[
            "attractor verify --run-dir checkpoints/nlm   # checks every checkpoint's format and checksum",
        ],
    ),
    (
        "bench ddm",
        &[
            "attractor bench ddm",
            "attractor bench ddm --neurons 500 --devices flex,wgpu --peak-gflops 150",
        ],
    ),
    ("bench ops", &["attractor bench ops --rows 1024 --cols 784"]),
    (
        "bench fep",
        &[
            "attractor bench fep",
            "attractor bench fep --neurons 64 --engines tensor",
        ],
    ),
    (
        "bench nlm",
        &[
            "attractor bench nlm",
            "attractor bench nlm --chains 100 --updates 5 --profile",
        ],
    ),
    (
        "devices",
        &[
            "attractor devices",
            "attractor --device wgpu nlm train --run-dir checkpoints/nlm-gpu",
        ],
    ),
    (
        "completions",
        &[
            "attractor completions bash > ~/.local/share/bash-completion/completions/attractor",
            "attractor completions zsh > ~/.zfunc/_attractor",
            "attractor completions fish > ~/.config/fish/completions/attractor.fish",
        ],
    ),
];

/// The examples of one command path, if any.
pub fn examples_for(path: &str) -> Option<&'static [&'static str]> {
    EXAMPLES.iter().find(|(p, _)| *p == path).map(|(_, e)| *e)
}

/// The full command tree with the examples attached to the leaves (what `main` parses with).
pub fn command() -> Command {
    attach(Cli::command(), "")
}

fn attach(cmd: Command, prefix: &str) -> Command {
    let path = if prefix.is_empty() {
        String::new()
    } else {
        prefix.to_string()
    };
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = with_config_defaults(cmd, &path);
    for name in names {
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |sub| attach(sub, &child));
    }
    match examples_for(&path) {
        Some(ex) => {
            let mut text = String::from("Examples:\n");
            for e in ex {
                text.push_str("  ");
                text.push_str(e);
                text.push('\n');
            }
            cmd.after_help(text.trim_end().to_string())
        }
        None => cmd,
    }
}

/// The configuration defaults of the `train` command at `path`, if it is one.
fn train_defaults(path: &str) -> Option<serde_json::Value> {
    use crate::api::family::{DdmFamily, Family, FepFamily, NlmFamily, RunConfig};
    let v = match path {
        "ddm train" => serde_json::to_value(<DdmFamily as Family>::Config::defaults()),
        "nlm train" => serde_json::to_value(<NlmFamily as Family>::Config::defaults()),
        "fep train" => serde_json::to_value(<FepFamily as Family>::Config::defaults()),
        _ => return None,
    };
    v.ok()
}

/// A configuration value as a user types it (`1,3,6`, `cosine`, `0.001`).
fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(shown).collect::<Vec<_>>().join(","),
        serde_json::Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// `train` options are optional (an absent one leaves the configuration's value), so clap
/// shows no default of its own: the configuration's default is appended to each option's help.
fn with_config_defaults(cmd: Command, path: &str) -> Command {
    let Some(defaults) = train_defaults(path) else {
        return cmd;
    };
    let ids: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|a| {
            let key = a.get_id().as_str().to_string();
            let v = defaults.get(&key)?;
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            Some((key, format!("{help} [default: {}]", shown(v))))
        })
        .collect();
    ids.into_iter()
        .fold(cmd, |c, (id, help)| c.mut_arg(id, |a| a.help(help)))
}

/// Every leaf command path (`"nlm generate"`), in the order `--help` lists them.
pub fn leaf_paths() -> Vec<String> {
    fn walk(cmd: &Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = if prefix.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{prefix} {}", sub.get_name())
            };
            if sub.has_subcommands() {
                walk(sub, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), "", &mut out);
    out
}

/// Writes the completion script of `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = command();
    clap_complete::generate(shell, &mut cmd, "attractor", out);
}

/// `docs/cli.md`: the long help of every command, generated from the clap definitions (a test
/// fails when the checked-in page is stale; `ATTRACTOR_BLESS=1 cargo test --release --test front_door`
/// rewrites it).
pub fn markdown() -> String {
    fn section(cmd: &mut Command, path: &str, out: &mut String) {
        let level = path.split(' ').count().min(3) + 1;
        out.push_str(&format!("{} `{path}`\n\n", "#".repeat(level)));
        if let Some(about) = cmd.get_about() {
            out.push_str(&format!("{about}\n\n"));
        }
        let help = cmd.render_long_help().to_string();
        out.push_str("```text\n");
        for line in help.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str("```\n\n");
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        for name in names {
            let child = format!("{path} {name}");
            if let Some(sub) = cmd.find_subcommand_mut(&name) {
                section(sub, &child, out);
            }
        }
    }
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from the program's own `--help` (`src/cli/help.rs`); do not edit by hand — \
         `ATTRACTOR_BLESS=1 cargo test --release --test front_door` rewrites it, and that test fails \
         when this page is stale. Global options (`--device`, `--seed`, `--quiet`) go before \
         the command: `attractor --device flex nlm train …`.\n\n",
    );
    let mut cmd = command().term_width(100).bin_name("attractor");
    cmd.build();
    section(&mut cmd, "attractor", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_command_has_examples_and_every_example_parses() {
        let leaves = leaf_paths();
        assert!(leaves.len() >= 25, "{leaves:?}");
        for leaf in &leaves {
            let ex = examples_for(leaf).unwrap_or_else(|| panic!("no example for `{leaf}`"));
            assert!(!ex.is_empty() && ex.len() <= 3, "`{leaf}`: 1-3 examples");
        }
        for (path, ex) in EXAMPLES {
            assert!(
                leaves.iter().any(|l| l == path),
                "example for unknown `{path}`"
            );
            for e in *ex {
                // Shell comments and redirections are not arguments.
                let line = e
                    .split('#')
                    .next()
                    .unwrap_or(e)
                    .split('>')
                    .next()
                    .unwrap_or(e);
                let args: Vec<String> = line
                    .split_whitespace()
                    .map(|w| w.trim_matches('\'').to_string())
                    .collect();
                let parsed = command().try_get_matches_from(&args);
                assert!(parsed.is_ok(), "`{e}` does not parse: {:?}", parsed.err());
            }
        }
    }

    #[test]
    fn help_of_a_leaf_ends_with_its_examples() {
        let mut cmd = command();
        let nlm = cmd.find_subcommand_mut("nlm").expect("nlm");
        let gen_ = nlm.find_subcommand_mut("generate").expect("generate");
        let help = gen_.render_long_help().to_string();
        assert!(
            help.contains("Examples:\n  attractor nlm generate"),
            "{help}"
        );
    }

    #[test]
    fn train_options_show_the_configuration_defaults() {
        let mut cmd = command();
        cmd.build();
        let nlm = cmd
            .find_subcommand_mut("nlm")
            .and_then(|c| c.find_subcommand_mut("train"))
            .expect("nlm train");
        let help = nlm.render_help().to_string();
        let want = format!(
            "[default: {}]",
            crate::models::nlm::NlmConfig::new().updates
        );
        assert!(help.contains(&want), "{help}");
        assert!(help.contains("Global options"), "{help}");
    }

    #[test]
    fn bash_completions_name_the_commands() {
        let mut out = Vec::new();
        completions(clap_complete::Shell::Bash, &mut out);
        let s = String::from_utf8(out).expect("utf-8");
        assert!(s.contains("complete -F") && s.contains("attractor"), "{s}");
        assert!(s.contains("denoise") && s.contains("--run-dir"));
    }
}
