//! Fault drills in miniature: one writer per run directory (stale locks taken over), write
//! failures that keep the last checkpoint, divergence exit codes and records, absurd sizes
//! refused before anything large is allocated. The long drills are in `scripts/drill_kill.sh`.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use attractor::checkpoint;
use common::{assert_clean_error, attractor, stderr, tmpdir};

const BIN: &str = env!("CARGO_BIN_EXE_attractor");

/// A tiny NLM training command (MNIST pooled 4× to 7×7, 200 images, 32 chains).
const NLM_TINY: &[&str] = &[
    "nlm", "train", "--pool", "4", "--n-data", "200", "--chains", "32", "--batch", "32",
];

/// Runs `attractor --device flex --quiet ARGS…`.
fn flex(args: &[&str]) -> Output {
    attractor(&[&["--device", "flex", "--quiet"], args].concat())
}

fn all_finite(ck: &checkpoint::Checkpoint) -> bool {
    ck.arrays
        .iter()
        .all(|a| a.data.iter().all(|x| x.is_finite()))
}

fn run_args(args: &[String]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn wait_for_checkpoint(run: &Path) {
    let t0 = Instant::now();
    while checkpoint::list(run).map(|l| l.is_empty()).unwrap_or(true) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn second_writer_is_refused_and_a_stale_lock_is_taken_over() {
    let t = tmpdir("lock");
    let run = t.join("run");
    let mut child = Command::new(BIN)
        .args(common::ddm_train_args(&run, "1000000", &[]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_checkpoint(&run);
    let d = run.to_str().unwrap();
    // A second process on the same directory: resume, an analysis command, an overwrite.
    for args in [
        vec!["--quiet", "resume", "--run-dir", d],
        vec!["--quiet", "export", "--run-dir", d],
    ] {
        let o = attractor(&args);
        assert_clean_error(&o, &["in use", &format!("pid {}", child.id())]);
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    }
    let o = run_args(&common::ddm_train_args(&run, "10", &["--overwrite"]));
    assert_clean_error(&o, &["in use"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        !checkpoint::list(&run).unwrap().is_empty(),
        "the refused --overwrite removed the live run's checkpoints"
    );
    // The holder dies without cleaning up: the next process takes the lock over.
    child.kill().unwrap();
    let _ = child.wait();
    let lock = std::fs::read_to_string(run.join("run.lock")).unwrap();
    assert!(lock.contains(&format!("pid {}", child.id())), "{lock}");
    let step = checkpoint::list(&run).unwrap()[0].0;
    let until = (step + 3).to_string();
    let o = attractor(&[
        "--device",
        "flex",
        "resume",
        "--run-dir",
        d,
        "--until",
        &until,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no longer running"),
        "stale lock not reported: {}",
        stderr(&o)
    );
    // Released cleanly: empty lock file, and the next process needs no takeover.
    assert_eq!(std::fs::read_to_string(run.join("run.lock")).unwrap(), "");
}

#[test]
fn a_write_failure_stops_with_exit_3_and_keeps_the_last_checkpoint() {
    let t = tmpdir("efbig");
    let reference = t.join("ref");
    let keep = [
        "--set",
        "checkpoint_every=10",
        "--set",
        "keep_checkpoints=10",
    ];
    let o = run_args(&common::ddm_train_args(&reference, "40", &keep));
    assert!(o.status.success(), "{}", stderr(&o));
    // A copy of the run that stopped at step 20 (later checkpoints removed).
    let run = t.join("run");
    std::fs::create_dir_all(&run).unwrap();
    for e in std::fs::read_dir(&reference).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("ckpt-00000003") || name.starts_with("ckpt-00000004") {
            continue;
        }
        if p.is_file() {
            std::fs::copy(&p, run.join(&name)).unwrap();
        }
    }
    let last_good = checkpoint::list(&run).unwrap()[0].1.clone();
    assert!(last_good.to_str().unwrap().contains("000000020"));
    let before = std::fs::read(&last_good).unwrap();
    let size_kb = before.len() / 1024;
    assert!(size_kb >= 8, "checkpoint too small for the drill");
    // Files may not grow beyond half a checkpoint: the step-30 checkpoint cannot be written.
    let d = run.to_str().unwrap();
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f {}; exec {BIN} --device flex --quiet resume --run-dir {d}",
            size_kb / 2
        ))
        .output()
        .unwrap();
    assert_clean_error(&o, &["cannot write", "ckpt-000000030"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&last_good).unwrap(),
        before,
        "last good checkpoint changed"
    );
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "temporary file left behind: {names:?}"
    );
    for line in std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
    {
        serde_json::from_str::<serde_json::Value>(line).expect("metrics line intact");
    }
    // With room again the run resumes from step 20 and ends where the reference ended.
    let o = flex(&["resume", "--run-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = checkpoint::load_latest(&reference).unwrap().unwrap();
    let b = checkpoint::load_latest(&run).unwrap().unwrap();
    assert_eq!((a.step, b.step), (40, 40));
    assert_eq!(a.arrays, b.arrays, "resumed run differs from the reference");
}

#[test]
fn divergence_names_step_and_quantity_exits_4_and_records_the_last_good_checkpoint() {
    let t = tmpdir("diverge");
    let run = t.join("run");
    let o = run_args(&common::ddm_train_args(
        &run,
        "200",
        &[
            "--lr",
            "1e30",
            "--init",
            "zero",
            "--set",
            "checkpoint_every=1",
        ],
    ));
    assert_clean_error(&o, &["diverged at step", "loss =", "last good checkpoint"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("diverged.json")).unwrap()).unwrap();
    let step = rec["step"].as_u64().unwrap();
    assert!((1..=200).contains(&step), "{rec}");
    assert!(!rec["quantity"].as_str().unwrap().is_empty(), "{rec}");
    let good = rec["last_good_checkpoint"].as_str().unwrap();
    let ck = checkpoint::load_latest(&run).unwrap().unwrap();
    assert!(good.contains(&format!("(step {})", ck.step)), "{rec}");
    assert_eq!(
        ck.step,
        step - 1,
        "the last good checkpoint is the step before"
    );
    assert!(all_finite(&ck), "a non-finite state was checkpointed");
}

/// Runs `attractor` with a 4 GiB address-space limit: a command that tried to allocate its absurd
/// request would die (abort or panic) instead of printing a clean error.
fn limited(args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 4194304; exec {BIN} {}",
            quoted.join(" ")
        ))
        .output()
        .unwrap()
}

#[test]
fn absurd_sizes_and_values_are_refused_before_allocating() {
    let t = tmpdir("absurd");
    let r = t.join("run");
    let d = r.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["ddm", "train", "--neurons", "1000000000"], "GiB"),
        (vec!["ddm", "train", "--batch", "1000000000"], "GiB"),
        (vec!["ddm", "train", "--iters", "0"], "iters"),
        (vec!["ddm", "train", "--set", "tau=0"], "tau"),
        (vec!["nlm", "train", "--chains", "2000000"], "chains"),
        (vec!["nlm", "train", "--chains", "0"], "chains"),
        (vec!["nlm", "train", "--updates", "0"], "updates"),
        (vec!["nlm", "train", "--set", "dt=0"], "dt"),
        (vec!["nlm", "train", "--set", "dt=-0.01"], "dt"),
        (
            vec!["nlm", "train", "--steps-per-update", "0"],
            "steps_per_update",
        ),
        (vec!["fep", "train", "--set", "networks=1000000000"], "GiB"),
        (vec!["fep", "train", "--epochs", "0"], "epochs"),
        (
            vec!["fep", "train", "--steps-per-epoch", "0"],
            "steps_per_epoch",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["--device", "flex", "--quiet"];
        full.extend_from_slice(&args);
        full.extend_from_slice(&["--run-dir", d]);
        let o = limited(&full);
        assert_clean_error(&o, &[needle]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!r.exists(), "{args:?} left a run directory behind");
    }
}

/// Trains `args` to the end in `ref`, copies the run as it was after `cut` steps (later
/// checkpoints dropped), resumes the copy, and demands a byte-identical final checkpoint.
fn resume_from_the_middle_is_bit_exact(name: &str, args: &[&str], cut: u64) {
    let t = tmpdir(name);
    let reference = t.join("ref");
    let mut full: Vec<&str> = vec!["--device", "flex", "--quiet"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--run-dir", reference.to_str().unwrap()]);
    let o = attractor(&full);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = t.join("cut");
    std::fs::create_dir_all(&run).unwrap();
    for e in std::fs::read_dir(&reference).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let later = checkpoint::list(&reference)
            .unwrap()
            .iter()
            .any(|(s, q)| *s > cut && *q == p);
        if p.is_file() && !later && name != "run.lock" {
            std::fs::copy(&p, run.join(&name)).unwrap();
        }
    }
    assert_eq!(checkpoint::list(&run).unwrap()[0].0, cut);
    let o = flex(&["resume", "--run-dir", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (
        checkpoint::list(&reference).unwrap()[0].1.clone(),
        checkpoint::list(&run).unwrap()[0].1.clone(),
    );
    assert_eq!(a.file_name(), b.file_name());
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "{name}: the resumed run's final checkpoint differs from the uninterrupted run's"
    );
}

#[test]
fn fep_resume_is_bit_exact_with_non_unit_evidence() {
    // Regression: patterns went through the f32 checkpoint and came back rounded, so a resumed
    // run computed slightly different input biases whenever evidence × pattern was not exact.
    // Both engines: the host engine also carries the field Jσ across epochs and must recompute
    // it bit-identically after a resume.
    for engine in ["host", "tensor"] {
        let set = format!("engine={engine}");
        resume_from_the_middle_is_bit_exact(
            &format!("fep-exact-{engine}"),
            &[
                "fep",
                "train",
                "--epochs",
                "24",
                "--steps-per-epoch",
                "50",
                "--evidence",
                "0.37",
                "--set",
                "networks=3",
                "--set",
                "checkpoint_every=4",
                "--set",
                "keep_checkpoints=10",
                "--set",
                &set,
            ],
            12,
        );
    }
}

#[test]
fn nlm_resume_is_bit_exact() {
    resume_from_the_middle_is_bit_exact(
        "nlm-exact",
        &[
            NLM_TINY,
            &[
                "--updates",
                "30",
                "--set",
                "checkpoint_every=10",
                "--set",
                "keep_checkpoints=10",
            ],
        ]
        .concat(),
        10,
    );
}

#[test]
fn constant_images_and_zero_variance_patterns_are_clean_errors() {
    let t = tmpdir("constant");
    let imgs = t.join("blank");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..3 {
        image::GrayImage::from_pixel(8, 8, image::Luma([0u8]))
            .save(imgs.join(format!("{i}.png")))
            .unwrap();
    }
    let run = t.join("run");
    let o = limited(&[
        "--device",
        "flex",
        "--quiet",
        "nlm",
        "train",
        "--data",
        imgs.to_str().unwrap(),
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["constant", "nothing to learn"]);
    assert_eq!(o.status.code(), Some(2));
    let csv = t.join("flat.csv");
    std::fs::write(&csv, "1,2,3,4\n0.5,0.5,0.5,0.5\n").unwrap();
    let o = limited(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "train",
        "--patterns",
        csv.to_str().unwrap(),
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["zero variance", "row 1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!run.exists(), "a failed start left a run directory behind");
}

#[test]
fn nlm_and_fep_divergence_exit_4_with_a_record() {
    let t = tmpdir("diverge-nlm-fep");
    for (name, args) in [
        (
            "nlm",
            [NLM_TINY, &["--updates", "200", "--lr", "1e30"]].concat(),
        ),
        (
            "fep",
            vec!["fep", "train", "--lr", "1e30", "--epochs", "50"],
        ),
    ] {
        let run = t.join(name);
        let o = flex(&[&args[..], &["--run-dir", run.to_str().unwrap()]].concat());
        assert_clean_error(&o, &["diverged at step", "last good checkpoint"]);
        assert_eq!(o.status.code(), Some(4), "{name}: {}", stderr(&o));
        let rec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("diverged.json")).unwrap())
                .unwrap();
        let ck = checkpoint::load_latest(&run).unwrap().unwrap();
        assert!(ck.step < rec["step"].as_u64().unwrap(), "{name}: {rec}");
        assert!(
            rec["last_good_checkpoint"]
                .as_str()
                .unwrap()
                .contains(&format!("(step {})", ck.step)),
            "{name}: {rec}"
        );
        assert!(
            all_finite(&ck),
            "{name}: a non-finite state was checkpointed"
        );
    }
}

#[test]
fn ctrl_c_and_sigterm_save_a_checkpoint_and_exit_130() {
    for signal in ["INT", "TERM"] {
        let t = tmpdir(&format!("sig{signal}"));
        let run = t.join("run");
        let child = Command::new(BIN)
            .args(common::ddm_train_args(
                &run,
                "1000000",
                &["--set", "checkpoint_every=0"],
            ))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_checkpoint(&run);
        std::thread::sleep(Duration::from_millis(300));
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "SIG{signal}: {err}");
        assert!(err.contains("attractor resume --run-dir"), "{err}");
        let ck = checkpoint::load_latest(&run).unwrap().unwrap();
        assert!(
            ck.step > 0 && ck.step < 1_000_000,
            "SIG{signal}: checkpoint at step {}",
            ck.step
        );
    }
}

#[test]
fn a_failed_output_write_leaves_the_previous_output_intact() {
    let t = tmpdir("output-efbig");
    let run = t.join("run");
    let d = run.to_str().unwrap();
    let o = flex(&[
        "fep",
        "train",
        "--epochs",
        "5",
        "--run-dir",
        d,
        "--set",
        "networks=16",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = flex(&["fep", "eval", "--run-dir", d, "--trials", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(run.join("eval.json")).unwrap();
    assert!(before.len() > 2048, "eval.json too small for the drill");
    // A file-size limit of one block (512 B or 1 KiB, depending on the shell): the lock file
    // fits, the new eval.json does not.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 1; exec {BIN} --device flex --quiet fep eval --run-dir {d} --trials 3"
        ))
        .output()
        .unwrap();
    assert_clean_error(&o, &["cannot write", "eval.json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(std::fs::read(run.join("eval.json")).unwrap(), before);
    assert!(!run.join("eval.json.tmp").exists());
}
