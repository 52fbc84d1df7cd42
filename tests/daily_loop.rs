//! The researcher's daily loop: what a new user meets between two trainings (messages that
//! name the key and the next step, a run that is already complete, a run trained longer, a
//! completion script cut short by `head`, a headless machine with a Vulkan driver).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_clean_error, attractor, stderr, tmpdir};

const BIN: &str = env!("CARGO_BIN_EXE_attractor");

fn train(dir: &Path, iters: &str, extra: &[&str]) -> std::process::Output {
    let args = common::ddm_train_args(dir, iters, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    attractor(&args)
}

fn metrics_steps(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .collect()
}

#[test]
fn value_errors_name_the_key_and_typos_get_the_closest_key() {
    let t = tmpdir("keys");
    let d = t.join("run");
    assert_clean_error(
        &train(&d, "fifty", &[]),
        &["invalid value 'fifty' for '--iters"],
    );
    assert_clean_error(
        &train(&d, "10", &["--set", "tau=slow"]),
        &["configuration key `tau`", "invalid type: string \"slow\""],
    );
    assert_clean_error(
        &train(&d, "10", &["--set", "itres=10"]),
        &["unknown configuration key `itres`: did you mean `iters`?"],
    );
    // `--iterations` is the long spelling of `--iters`, not a typo of `--neurons`.
    let mut args = common::ddm_train_args(&d, "7", &[]);
    for a in &mut args {
        if a == "--iters" {
            *a = "--iterations".into();
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = attractor(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics_steps(&d).last(), Some(&7));
}

#[test]
fn a_complete_run_says_so_and_is_trained_longer_with_total() {
    let t = tmpdir("longer");
    let d = t.join("run");
    let ds = d.to_str().expect("utf-8");
    let o = train(&d, "20", &["--set", "log_every=10"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Resuming a finished run: says it is complete and how to go on, trains nothing.
    let o = attractor(&["--device", "flex", "resume", "--run-dir", ds]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("already complete"), "{e}");
    assert!(e.contains("--total"), "{e}");
    assert_eq!(metrics_steps(&d), vec![10, 20]);

    // --until past the end is refused with the way to do it, not silently capped.
    assert_clean_error(
        &attractor(&[
            "--device",
            "flex",
            "resume",
            "--run-dir",
            ds,
            "--until",
            "40",
        ]),
        &[
            "--until 40 is past the end of the run (20 iterations)",
            "--total 40",
        ],
    );

    // --total lengthens the run: config.json follows, training goes on from step 20.
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "resume",
        "--run-dir",
        ds,
        "--total",
        "40",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics_steps(&d), vec![10, 20, 30, 40]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(cfg["config"]["iters"], 40);
    // Shortening below what is done is refused.
    assert_clean_error(
        &attractor(&[
            "--device",
            "flex",
            "resume",
            "--run-dir",
            ds,
            "--total",
            "30",
        ]),
        &["already done 40 iterations"],
    );
}

#[test]
fn the_end_of_a_run_names_the_next_step() {
    let t = tmpdir("next");
    let d = t.join("run");
    let mut args = common::ddm_train_args(&d, "5", &[]);
    args.retain(|a| a != "--quiet");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = attractor(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("finished: 5 iterations done") && e.contains("Next: attractor ddm eval"),
        "{e}"
    );
}

#[test]
fn completions_cut_short_by_the_reader_are_not_an_error() {
    // The reader is gone before the first byte: every write meets EPIPE.
    let mut child = Command::new(BIN)
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "exit {:?}: {e}", o.status.code());
    assert!(!e.contains("panicked"), "{e}");
}

/// Whether a Vulkan driver is installed (Mesa's lavapipe or any other ICD).
fn vulkan_installed() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .any(|d| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()))
}

#[test]
fn a_headless_machine_with_a_vulkan_driver_prints_no_error_line() {
    if !vulkan_installed() {
        assert!(
            std::env::var("ATTRACTOR_REQUIRE_GPU").is_err(),
            "ATTRACTOR_REQUIRE_GPU is set but no Vulkan driver is installed"
        );
        eprintln!("no Vulkan driver installed: nothing to check");
        return;
    }
    // No desktop session: what ssh, containers and batch jobs give.
    let t = tmpdir("headless");
    let mut train: Vec<String> = common::ddm_train_args(&t.join("run"), "3", &[]);
    for a in &mut train {
        if a == "flex" {
            *a = "auto".into();
        }
    }
    let train: Vec<&str> = train.iter().map(String::as_str).collect();
    for args in [&["devices"][..], &train[..]] {
        let o = Command::new(BIN)
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .expect("run");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {e}");
        assert!(
            !e.lines().any(|l| l.contains("error:")),
            "{args:?} succeeded but printed an error line:\n{e}"
        );
    }
}

#[test]
fn a_run_trained_on_a_relative_data_folder_generates_from_anywhere() {
    let t = tmpdir("relative-data");
    let data = t.join("mypngs");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..12u32 {
        let mut img = image::GrayImage::new(6, 6);
        for j in 0..6 {
            img.put_pixel(j, 1 + i % 4, image::Luma([255]));
        }
        img.save(data.join(format!("{i:02}.png"))).unwrap();
    }
    let run_in = |cwd: &Path, args: &[&str]| {
        Command::new(BIN)
            .current_dir(cwd)
            .args(["--device", "flex", "--quiet"])
            .args(args)
            .output()
            .unwrap()
    };
    // Trained from `t` with `--data mypngs`…
    let o = run_in(
        &t,
        &[
            "nlm",
            "train",
            "--data",
            "mypngs",
            "--updates",
            "4",
            "--chains",
            "8",
            "--batch",
            "8",
            "--run-dir",
            "run",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("run/config.json")).unwrap()).unwrap();
    let stored = cfg["config"]["data"].as_str().unwrap().to_string();
    assert!(Path::new(&stored).is_absolute(), "stored {stored}");
    // …and sampled from another working directory.
    let elsewhere = tmpdir("relative-data-elsewhere");
    let run = t.join("run");
    let r = run.to_str().unwrap();
    let o = run_in(
        &elsewhere,
        &[
            "nlm",
            "generate",
            "--run-dir",
            r,
            "--chains",
            "4",
            "--steps",
            "3",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("generate.png").is_file());
    // A folder that went away is named as the run's training images.
    std::fs::rename(&data, t.join("moved")).unwrap();
    let o = run_in(
        &elsewhere,
        &[
            "nlm",
            "generate",
            "--run-dir",
            r,
            "--chains",
            "4",
            "--steps",
            "3",
        ],
    );
    assert_clean_error(
        &o,
        &[&format!(
            "this run was trained on images at {stored}, which cannot be found"
        )],
    );
}
