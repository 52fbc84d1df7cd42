//! The front door: docs/cli.md is the program's own help, completions work in bash, progress
//! bars appear on a terminal only, and `RUST_LOG` reaches the logger.

mod common;

use std::path::Path;
use std::process::Command;

use common::{attractor, tmpdir};

const BIN: &str = env!("CARGO_BIN_EXE_attractor");

#[test]
fn docs_cli_md_is_the_current_help() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    let fresh = attractor::cli::help::markdown();
    if std::env::var_os("ATTRACTOR_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write docs/cli.md");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "docs/cli.md is stale: regenerate it with `ATTRACTOR_BLESS=1 cargo test --release --test front_door`"
    );
    for leaf in attractor::cli::help::leaf_paths() {
        assert!(
            fresh.contains(&format!("`attractor {leaf}`")),
            "{leaf} missing"
        );
    }
}

#[test]
fn bash_completion_script_registers_the_command() {
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{BIN}' completions bash); complete -p attractor"
        ))
        .output()
        .expect("run bash");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("complete") && out.contains("attractor"),
        "{out}"
    );
}

#[test]
fn every_leaf_help_shows_an_example() {
    for leaf in attractor::cli::help::leaf_paths() {
        let mut args: Vec<&str> = leaf.split(' ').collect();
        args.push("--help");
        let o = attractor(&args);
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && s.contains("Examples:\n  attractor "),
            "{leaf}:\n{s}"
        );
    }
}

/// Runs `args` under a pseudo-terminal (`script`), returning what the terminal saw.
fn on_a_terminal(args: &[&str]) -> String {
    let cmd = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .expect("run `script` (util-linux)");
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The bar's `[elapsed<eta]` field.
fn has_eta_bar(s: &str) -> bool {
    s.as_bytes().windows(19).any(|w| {
        let t = |i: usize| w[i].is_ascii_digit();
        w[0] == b'['
            && t(1)
            && t(2)
            && w[3] == b':'
            && w[9] == b'<'
            && t(10)
            && w[12] == b':'
            && w[18] == b']'
    })
}

#[test]
fn long_commands_draw_a_progress_bar_on_a_terminal_only() {
    let t = tmpdir("bars");
    let ddm = t.join("ddm");
    let nlm = t.join("nlm");
    let patterns = t.join("p.csv");
    std::fs::write(&patterns, "1,0,0,1,0,1,0,1\n0,1,1,0,0,1,1,0\n").expect("write patterns");
    let (d, n) = (ddm.to_str().expect("utf-8"), nlm.to_str().expect("utf-8"));
    let args = common::ddm_train_args(&ddm, "20", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(attractor(&args).status.success());
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "nlm",
        "train",
        "--updates",
        "5",
        "--pool",
        "2",
        "--n-data",
        "100",
        "--chains",
        "16",
        "--batch",
        "16",
        "--run-dir",
        n,
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let sweep = t.join("sweep");
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "ddm",
            "simulate",
            "--run-dir",
            d,
            "--t-end",
            "200",
            "--trajectories",
            "2",
        ],
        vec![
            "nlm",
            "generate",
            "--run-dir",
            n,
            "--chains",
            "16",
            "--steps",
            "3000",
        ],
        vec![
            "nlm",
            "eval",
            "--run-dir",
            n,
            "--n-gen",
            "32",
            "--gen-steps",
            "3000",
        ],
        vec![
            "fep",
            "sweep",
            "--patterns",
            patterns.to_str().expect("utf-8"),
            "--evidence",
            "5,10",
            "--beta",
            "0.1..1:3",
            "--epochs",
            "3000",
            "--trials",
            "2",
            "--overwrite",
            "--run-dir",
            sweep.to_str().expect("utf-8"),
        ],
    ];
    for c in &commands {
        let mut args = vec!["--device", "flex"];
        args.extend_from_slice(c);
        let seen = on_a_terminal(&args);
        assert!(
            has_eta_bar(&seen),
            "{c:?}: no progress bar on a terminal:\n{seen}"
        );
        let mut quiet = vec!["--device", "flex", "--quiet"];
        quiet.extend_from_slice(c);
        let seen = on_a_terminal(&quiet);
        assert!(!has_eta_bar(&seen), "{c:?}: a bar despite --quiet:\n{seen}");
        let piped = attractor(&args);
        assert!(piped.status.success());
        assert!(
            !has_eta_bar(&common::stderr(&piped)),
            "{c:?}: a bar into a pipe"
        );
    }
}

#[test]
fn rust_log_debug_shows_log_records() {
    let t = tmpdir("rustlog");
    let args = common::ddm_train_args(&t.join("run"), "100", &[]);
    let o = Command::new(BIN)
        .args(&args)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run attractor");
    let e = common::stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("[DEBUG attractor::train]"),
        "no debug records:\n{e}"
    );
    assert!(t.join("run/curves.png").exists(), "curves.png not written");
    // Without RUST_LOG, no debug records.
    let o = attractor(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!common::stderr(&o).contains("DEBUG"));
}

#[test]
fn no_eprintln_outside_the_final_error_printer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("read source");
                for (i, line) in text.lines().enumerate() {
                    if line.contains("eprintln!") || line.contains("eprint!(") {
                        found.push(format!("{}:{}", p.display(), i + 1));
                    }
                }
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "diagnostics must go through `log`: {found:?}"
    );
    assert!(found[0].contains("cli/mod.rs"), "{found:?}");
}
