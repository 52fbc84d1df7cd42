//! The command-line contract: bad input gets a clear error and loses nothing; a real training
//! process killed with SIGKILL resumes to the same parameters as an uninterrupted run.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{assert_clean_error, attractor, tmpdir};

fn train(dir: &Path, iters: &str, extra: &[&str]) -> std::process::Output {
    let args = common::ddm_train_args(dir, iters, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    attractor(&args)
}

#[test]
fn sde_list_prints_every_builtin() {
    let o = attractor(&["sde", "list"]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for n in [
        "ou-rot",
        "double-well",
        "stuart-landau",
        "lorenz",
        "multiwell-switch",
        "multiwell-cycle",
    ] {
        assert!(s.contains(n), "missing {n}");
    }
    assert!(s.contains("--param theta=1"));
}

#[test]
fn bad_hyperparameters_and_names_are_clean_errors() {
    let t = tmpdir("badargs");
    let d = t.join("run");
    assert_clean_error(
        &train(&d, "10", &["--sde", "no-such-sde"]),
        &["unknown SDE `no-such-sde`"],
    );
    assert_clean_error(
        &train(&d, "10", &["--set", "tau=-1"]),
        &["`tau` must be a positive number"],
    );
    assert_clean_error(
        &train(&d, "10", &["--set", "nonsense=3"]),
        &["unknown configuration key `nonsense`"],
    );
    assert_clean_error(
        &train(&d, "10", &["--param", "thetaa=2"]),
        &["no parameter `thetaa`"],
    );
    assert_clean_error(
        &train(&d, "10", &["--lr=-0.1"]),
        &["`lr` must be a positive number"],
    );
    // N < d: Lorenz has d = 3.
    assert_clean_error(
        &train(&d, "10", &["--sde", "lorenz", "--neurons", "2"]),
        &["must be at least the latent dimension"],
    );
    assert!(
        !d.exists(),
        "a failed start must not leave a run directory behind"
    );
    assert_clean_error(
        &attractor(&[
            "ddm",
            "simulate",
            "--run-dir",
            t.join("missing").to_str().unwrap(),
        ]),
        &["does not exist"],
    );
    assert_clean_error(
        &attractor(&["resume", "--run-dir", t.join("missing").to_str().unwrap()]),
        &["does not exist"],
    );
    assert_clean_error(
        &attractor(&["--device", "tpu", "sde", "list"]),
        &["unknown device"],
    );
}

#[test]
fn bad_user_sde_file_names_file_line_and_token() {
    let t = tmpdir("badtoml");
    let f = t.join("bad.toml");
    std::fs::write(
        &f,
        "dim = 2\n[drift]\nz1 = \"z2\"\nz2 = \"-z1 + zz1\"\n[diffusion]\ndiagonal = [0.1, 0.1]\n",
    )
    .unwrap();
    let o = train(&t.join("run"), "10", &["--sde", f.to_str().unwrap()]);
    assert_clean_error(&o, &["bad.toml:4", "zz1"]);
    let o = attractor(&["sde", "check", f.to_str().unwrap()]);
    assert_clean_error(&o, &["bad.toml:4", "unknown variable"]);
}

#[test]
fn user_sde_file_trains_and_is_embedded_in_the_run() {
    let t = tmpdir("usertoml");
    let f = t.join("duffing.toml");
    std::fs::write(
        &f,
        "name = \"duffing\"\ndim = 2\n[params]\nalpha = 1.0\n[drift]\nz1 = \"z2\"\nz2 = \"alpha*z1 - z1^3 - 0.5*z2\"\n[diffusion]\ndiagonal = [0.3, 0.3]\n",
    )
    .unwrap();
    let run = t.join("run");
    let o = train(
        &run,
        "20",
        &["--sde", f.to_str().unwrap(), "--param", "alpha=0.8"],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    std::fs::remove_file(&f).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert!(
        cfg["config"]["sde_toml"]
            .as_str()
            .unwrap()
            .contains("alpha*z1")
    );
    // The run is self-contained: evaluation works after the file is gone.
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "ddm",
        "simulate",
        "--run-dir",
        run.to_str().unwrap(),
        "--t-end",
        "1",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(run.join("simulate.npy").exists() && run.join("simulate.png").exists());
}

fn newest_ckpt(dir: &Path) -> std::path::PathBuf {
    attractor::checkpoint::list(dir).unwrap()[0].1.clone()
}

#[test]
fn damaged_or_mismatched_checkpoints_are_refused_and_kept() {
    let t = tmpdir("damaged");
    let run = t.join("run");
    let o = train(&run, "20", &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let rd = run.to_str().unwrap();
    let ck = newest_ckpt(&run);
    let good = std::fs::read(&ck).unwrap();
    // Truncated.
    std::fs::write(&ck, &good[..good.len() / 2]).unwrap();
    assert_clean_error(
        &attractor(&[
            "--device",
            "flex",
            "resume",
            "--run-dir",
            rd,
            "--total",
            "30",
        ]),
        &["truncated or corrupt"],
    );
    assert_eq!(
        std::fs::read(&ck).unwrap().len(),
        good.len() / 2,
        "damaged file was touched"
    );
    assert_clean_error(
        &attractor(&["--device", "flex", "ddm", "simulate", "--run-dir", rd]),
        &["unusable"],
    );
    // Invalid simulation settings on an intact run: nothing is written.
    std::fs::write(&ck, &good).unwrap();
    assert_clean_error(
        &attractor(&[
            "--device",
            "flex",
            "ddm",
            "simulate",
            "--run-dir",
            rd,
            "--dt=-0.01",
        ]),
        &["dt must be a positive number"],
    );
    assert_clean_error(
        &attractor(&[
            "--device",
            "flex",
            "ddm",
            "simulate",
            "--run-dir",
            rd,
            "--t-end=-5",
        ]),
        &["--t-end must be > 0"],
    );
    assert!(!run.join("simulate.npy").exists());
    std::fs::write(&ck, &good[..good.len() / 2]).unwrap();
    // Corrupt (one flipped byte).
    let mut bad = good.clone();
    bad[good.len() / 3] ^= 0x5a;
    std::fs::write(&ck, &bad).unwrap();
    assert_clean_error(
        &attractor(&["--device", "flex", "export", "--run-dir", rd]),
        &["truncated or corrupt"],
    );
    // Mismatched: the configuration asks for another network size.
    std::fs::write(&ck, &good).unwrap();
    let cfgp = run.join("config.json");
    let orig = std::fs::read_to_string(&cfgp).unwrap();
    std::fs::write(&cfgp, orig.replace("\"neurons\": 24", "\"neurons\": 30")).unwrap();
    assert_clean_error(
        &attractor(&["--device", "flex", "resume", "--run-dir", rd]),
        &["has shape", "different configuration"],
    );
    std::fs::write(&cfgp, &orig).unwrap();
    // Corrupt config.json.
    std::fs::write(&cfgp, "{ not json").unwrap();
    assert_clean_error(
        &attractor(&["--device", "flex", "resume", "--run-dir", rd]),
        &["config.json is not valid JSON"],
    );
    std::fs::write(&cfgp, &orig).unwrap();
    // A new training run refuses to overwrite the existing one.
    assert_clean_error(&train(&run, "20", &[]), &["already holds a run"]);
    assert_eq!(std::fs::read(&ck).unwrap(), good, "checkpoint changed");
    // Export works on the intact run.
    let o = attractor(&[
        "--device",
        "flex",
        "export",
        "--run-dir",
        rd,
        "--format",
        "npy",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v = attractor::npy::read_npy(&run.join("export/V.npy")).unwrap();
    assert_eq!(v.shape, vec![24, 2]);
    let o = attractor(&[
        "--device",
        "flex",
        "export",
        "--run-dir",
        rd,
        "--format",
        "safetensors",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let bytes = std::fs::read(run.join("export/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("W").unwrap().shape(), &[24, 24]);
}

#[test]
fn sigkill_at_random_times_then_resume_matches_uninterrupted_run() {
    let t = tmpdir("sigkill");
    let iters = "2500";
    let every = [
        "--set",
        "checkpoint_every=40",
        "--neurons",
        "100",
        "--batch",
        "512",
    ];
    let reference = t.join("ref");
    let t0 = std::time::Instant::now();
    let o = train(&reference, iters, &every);
    let ref_ms = t0.elapsed().as_millis() as u64;
    assert!(o.status.success(), "{}", common::stderr(&o));
    let killed = t.join("killed");
    let d = killed.to_str().unwrap().to_string();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut kills = 0;
    // Window of the kill moments, as a fraction of the uninterrupted run's duration.
    let mut window = 0.8;
    let mut fresh = true;
    // Kill the same run several times at pseudo-random moments, resuming each time. A run that
    // ends before its kill moment (the reference may have run slower, e.g. on a cold start)
    // is started afresh with a shorter window when nothing was killed yet, and ends the loop
    // otherwise.
    for _round in 0..12 {
        if kills >= 3 {
            break;
        }
        let args: Vec<String> = if fresh || !killed.join("config.json").exists() {
            let mut extra = every.to_vec();
            extra.push("--overwrite");
            common::ddm_train_args(&killed, iters, &extra)
        } else {
            ["--device", "flex", "--quiet", "resume", "--run-dir", &d]
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        fresh = false;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_attractor"))
            .args(&args)
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // A random moment within the window.
        let ms = 20 + seed % ((ref_ms as f64 * window) as u64).max(1);
        std::thread::sleep(Duration::from_millis(ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        } else if kills == 0 {
            fresh = true;
            window *= 0.5;
        } else {
            let _ = child.wait();
            break;
        }
        let _ = child.wait();
    }
    assert!(
        kills >= 1,
        "the process always finished before being killed; the test proved nothing"
    );
    let o = attractor(&["--device", "flex", "--quiet", "resume", "--run-dir", &d]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let a = attractor::checkpoint::load_latest(&reference)
        .unwrap()
        .unwrap();
    let b = attractor::checkpoint::load_latest(&killed)
        .unwrap()
        .unwrap();
    assert_eq!(a.step, 2500);
    assert_eq!(b.step, 2500);
    for name in ["read", "c", "A"] {
        assert_eq!(
            a.array(name).unwrap(),
            b.array(name).unwrap(),
            "tensor {name} differs after {kills} kills"
        );
    } // The TensorBoard events of the killed and resumed run: every logged step once, with the
    // values of metrics.jsonl (a kill may have torn the last record of a file).
    common::assert_tb_matches_metrics(&killed);
    common::assert_tb_matches_metrics(&reference);
}

#[test]
fn fep_bad_pattern_files_are_clean_errors() {
    let t = tmpdir("fepbad");
    let run = t.join("run");
    let r = run.to_str().unwrap();
    let cases: [(&str, &str, &str); 4] = [
        ("mixed.csv", "1,2,3\n4,5\n", "line 2 has 2 values"),
        ("nan.csv", "1,2,3\n4,NaN,6\n", "line 2"),
        ("empty.csv", "", "no patterns"),
        ("word.csv", "1,2,3\n4,x5,6\n", "x5"),
    ];
    for (name, text, needle) in cases {
        let f = t.join(name);
        std::fs::write(&f, text).unwrap();
        let o = attractor(&[
            "--device",
            "flex",
            "--quiet",
            "fep",
            "train",
            "--patterns",
            f.to_str().unwrap(),
            "--epochs",
            "5",
            "--run-dir",
            r,
        ]);
        assert_clean_error(&o, &[name, needle]);
        assert!(!run.exists(), "{name}: a failed start left a run directory");
    }
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "train",
        "--patterns",
        t.join("missing.npy").to_str().unwrap(),
        "--run-dir",
        r,
    ]);
    assert_clean_error(&o, &["missing.npy"]);
}

#[test]
fn fep_train_eval_attractors_resume() {
    let t = tmpdir("fepok");
    let f = t.join("p.csv");
    std::fs::write(
        &f,
        "# three patterns\n1,0,0,1,0,1\n0,1,1,0,0,1\n1,1,0,0,1,0\n",
    )
    .unwrap();
    let run = t.join("run");
    let r = run.to_str().unwrap();
    let base = [
        "--device",
        "flex",
        "--quiet",
        "fep",
        "train",
        "--patterns",
        f.to_str().unwrap(),
        "--epochs",
        "60",
        "--run-dir",
        r,
        "--set",
        "checkpoint_every=25",
    ];
    let o = attractor(&base);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "eval",
        "--run-dir",
        r,
        "--trials",
        "10",
        "--steps",
        "10",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    for k in [
        "n_attractors",
        "orthogonality_deg",
        "orthogonality_offdiag_deg",
        "data_orthogonality_deg",
        "retrieval_dr2",
        "generalization_dr2",
        "asymmetry",
    ] {
        assert!(ev.get(k).is_some(), "eval.json lacks {k}");
    }
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "attractors",
        "--run-dir",
        r,
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(run.join("attractors.npy").exists() && run.join("attractors.png").exists());
    // Resume equivalence: a run stopped at 30 and resumed ends with the same couplings.
    let run2 = t.join("run2");
    let r2 = run2.to_str().unwrap();
    let mut a2: Vec<&str> = base.to_vec();
    a2[10] = r2;
    let o = attractor(&a2);
    assert!(o.status.success());
    std::fs::remove_file(attractor::checkpoint::path_for(&run2, 60)).unwrap();
    std::fs::remove_file(attractor::checkpoint::path_for(&run2, 50)).unwrap();
    // A run written before the `engine` key existed still resumes (missing keys take their
    // defaults), to the same couplings.
    let cfg_path = run2.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    assert!(
        cfg["config"]
            .as_object_mut()
            .unwrap()
            .remove("engine")
            .is_some()
    );
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let o = attractor(&["--device", "flex", "--quiet", "resume", "--run-dir", r2]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let a = attractor::checkpoint::load_latest(&run).unwrap().unwrap();
    let b = attractor::checkpoint::load_latest(&run2).unwrap().unwrap();
    assert_eq!(a.step, 60);
    assert_eq!(a.array("J").unwrap(), b.array("J").unwrap());
}

#[test]
fn fep_sweep_recall_run_free_work_on_a_tiny_problem() {
    let t = tmpdir("fepmore");
    let f = t.join("p.csv");
    std::fs::write(&f, "1,0,0,1,0,1,0,1\n0,1,1,0,0,1,1,0\n1,1,0,0,1,0,0,1\n").unwrap();
    let sweep = t.join("sweep");
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "sweep",
        "--patterns",
        f.to_str().unwrap(),
        "--evidence",
        "5,10",
        "--beta",
        "0.1..1:3",
        "--epochs",
        "20",
        "--trials",
        "5",
        "--run-dir",
        sweep.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(v["networks"], 6);
    assert_eq!(v["retrieval_dr2"].as_array().unwrap().len(), 6);
    assert!(sweep.join("sweep.png").exists());
    let run = t.join("run");
    let r = run.to_str().unwrap();
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "train",
        "--patterns",
        f.to_str().unwrap(),
        "--epochs",
        "40",
        "--order",
        "sequential",
        "--steps-per-epoch",
        "1",
        "--beta",
        "1",
        "--evidence",
        "20",
        "--run-dir",
        r,
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "recall",
        "--run-dir",
        r,
        "--pattern-index",
        "0",
        "--pattern-index",
        "2",
        "--noise-sd",
        "1",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let rc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("recall.json")).unwrap()).unwrap();
    assert_eq!(rc["cues"].as_array().unwrap().len(), 2);
    assert!(rc["corr_cue"].is_number() && rc["corr_output"].is_number());
    assert!(run.join("recall.npy").exists() && run.join("recall.png").exists());
    assert_clean_error(
        &attractor(&[
            "--device",
            "flex",
            "fep",
            "recall",
            "--run-dir",
            r,
            "--pattern-index",
            "7",
        ]),
        &["out of range"],
    );
    let o = attractor(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "run-free",
        "--run-dir",
        r,
        "--steps",
        "30",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(run.join("states.npy").exists() && run.join("run_free.json").exists());
    assert_clean_error(
        &attractor(&[
            "--device",
            "flex",
            "fep",
            "sweep",
            "--beta",
            "a..b",
            "--run-dir",
            t.join("s2").to_str().unwrap(),
        ]),
        &["cannot parse range"],
    );
}

/// `attractor runs`: a finished run, a running one (its trainer holds the lock) and the same
/// run after a SIGKILL (interrupted: its lock file still names the dead process), as a table
/// and as JSON.
#[test]
fn runs_lists_finished_running_and_interrupted_runs() {
    let t = tmpdir("runs");
    let root = t.join("exp");
    let done = root.join("done");
    let o = train(&done, "20", &["--set", "log_every=5"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let live = root.join("group").join("live");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_attractor"))
        .args(common::ddm_train_args(
            &live,
            "1000000",
            &["--set", "log_every=1"],
        ))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !live.join("metrics.jsonl").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let list = |what: &str| -> Vec<serde_json::Value> {
        let o = attractor(&["runs", root.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{what}: {}", common::stderr(&o));
        serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
    };
    let l = list("running");
    assert_eq!(l.len(), 2, "{l:?}");
    // Sorted by path: exp/done, exp/group/live.
    assert_eq!(l[0]["path"], done.to_str().unwrap());
    assert_eq!(
        (
            &l[0]["family"],
            &l[0]["state"],
            &l[0]["step"],
            &l[0]["total_steps"]
        ),
        (&"ddm".into(), &"finished".into(), &20.into(), &20.into())
    );
    assert!(l[0]["loss"].as_f64().unwrap().is_finite());
    assert_eq!(l[1]["state"], "running", "{:?}", l[1]);
    assert_eq!(l[1]["total_steps"], 1_000_000);
    let table = attractor(&["runs", root.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(text.starts_with("RUN"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("done ")
            && l.contains("finished")
            && l.contains("20/20")
            && l.contains("ago")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("group/live") && l.contains("running")),
        "{text}"
    );
    child.kill().unwrap(); // SIGKILL: the lock file keeps the dead holder's name
    let _ = child.wait();
    assert!(
        !std::fs::read_to_string(live.join("run.lock"))
            .unwrap()
            .is_empty()
    );
    let l = list("killed");
    assert_eq!(l[1]["state"], "interrupted", "{:?}", l[1]);
    assert!(l[1]["step"].as_u64().unwrap() >= 1);
    assert_eq!(l[0]["state"], "finished");
    // One run directory given directly; a folder without runs; a missing folder.
    assert_eq!(
        serde_json::from_slice::<Vec<serde_json::Value>>(
            &attractor(&["runs", done.to_str().unwrap(), "--json"]).stdout
        )
        .unwrap()
        .len(),
        1
    );
    let empty = t.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = attractor(&["runs", empty.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no runs"));
    assert_clean_error(
        &attractor(&["runs", t.join("nowhere").to_str().unwrap()]),
        &["not a folder"],
    );
}
