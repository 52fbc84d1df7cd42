//! TensorBoard event files of training runs, read back by an independent reader
//! (`common::tb_events`): the scalars are `metrics.jsonl` step for step, each family's pictures
//! come at its checkpoints, the configuration is there as text, and a run resumed after a crash
//! (event files holding steps past its last checkpoint, a torn last record) has every step once.
//! `tests/tb_check.py` (run by `.ci/run`) checks the same with TensorBoard's own reader.

mod common;

use std::path::Path;

use common::{TbValue, assert_tb_matches_metrics, attractor, stderr, tb_events, tmpdir};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The steps at which `<run>/tb` holds an image tagged `tag`.
fn image_steps(run: &Path, tag: &str) -> Vec<u64> {
    tb_events(&run.join("tb"))
        .into_iter()
        .filter_map(|(s, t, v)| match v {
            TbValue::Image(w, h, head) if t == tag => {
                assert!(
                    w > 0 && h > 0 && head == PNG,
                    "{tag} at {s}: {w}×{h} {head:?}"
                );
                Some(s)
            }
            _ => None,
        })
        .collect()
}

/// The config texts of `<run>/tb` as `(step, text)`.
fn texts(run: &Path) -> Vec<(u64, String)> {
    tb_events(&run.join("tb"))
        .into_iter()
        .filter_map(|(s, t, v)| match v {
            TbValue::Text(x) if t == "config" => Some((s, x)),
            _ => None,
        })
        .collect()
}

fn flex(args: &[&str]) {
    let o = attractor(&[&["--device", "flex", "--quiet"], args].concat());
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

#[test]
fn each_family_writes_scalars_pictures_and_config() {
    let t = tmpdir("tb-families");
    let nlm = t.join("nlm");
    flex(&[
        "nlm",
        "train",
        "--pool",
        "4",
        "--n-data",
        "200",
        "--chains",
        "32",
        "--batch",
        "32",
        "--updates",
        "20",
        "--set",
        "checkpoint_every=10",
        "--set",
        "log_every=5",
        "--set",
        "polarity_chains=0",
        "--run-dir",
        nlm.to_str().unwrap(),
    ]);
    let fep = t.join("fep");
    flex(&[
        "fep",
        "train",
        "--epochs",
        "20",
        "--steps-per-epoch",
        "10",
        "--set",
        "checkpoint_every=10",
        "--set",
        "log_every=5",
        "--run-dir",
        fep.to_str().unwrap(),
    ]);
    let ddm = t.join("ddm");
    let args = common::ddm_train_args(
        &ddm,
        "20",
        &["--set", "checkpoint_every=10", "--set", "log_every=5"],
    );
    let o = attractor(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    for (run, picture) in [
        (&nlm, Some("chains")),
        (&fep, Some("couplings")),
        (&ddm, None),
    ] {
        assert_tb_matches_metrics(run);
        let logged: Vec<u64> = common::metrics_scalars(run).iter().map(|m| m.0).collect();
        assert!(logged.contains(&5) && logged.contains(&20), "{logged:?}");
        if let Some(tag) = picture {
            assert_eq!(image_steps(run, tag), vec![10, 20], "{}", run.display());
        }
        assert_eq!(
            image_steps(run, "curves"),
            vec![10, 20],
            "{}",
            run.display()
        );
        let config = std::fs::read_to_string(run.join("config.json")).unwrap();
        let text = texts(run);
        assert_eq!(text.len(), 1, "{}", run.display());
        assert_eq!(text[0].0, 0);
        // The text is config.json as a Markdown code block (each line indented by 4).
        let back: String = text[0]
            .1
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap()))
            .collect();
        assert_eq!(back.trim_end(), config.trim_end());
    }
    // Off: no folder.
    let off = t.join("off");
    let args = common::ddm_train_args(&off, "10", &["--set", "tensorboard=false"]);
    let o = attractor(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!off.join("tb").exists());
    let cfg = std::fs::read_to_string(off.join("config.json")).unwrap();
    assert!(cfg.contains("\"tensorboard\": false"), "{cfg}");
}

/// A run that crashed after step 30 with its last checkpoint at 20: `metrics.jsonl` and the
/// event file hold steps 25 and 30 (the file's last record torn). Resumed, the event files
/// hold every step of the finished run once, with the values of an uninterrupted run.
#[test]
fn a_resumed_run_has_every_step_once() {
    let t = tmpdir("tb-resume");
    let reference = t.join("ref");
    let keep = [
        "--set",
        "checkpoint_every=10",
        "--set",
        "keep_checkpoints=10",
        "--set",
        "log_every=5",
    ];
    let o = attractor(
        &common::ddm_train_args(&reference, "40", &keep)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_tb_matches_metrics(&reference);
    // The crashed copy: checkpoints through 20, metrics through 30, events through 30 (torn).
    let run = t.join("run");
    std::fs::create_dir_all(run.join("tb")).unwrap();
    for e in std::fs::read_dir(&reference).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if p.is_file()
            && name != "run.lock"
            && !name.starts_with("ckpt-00000003")
            && !name.starts_with("ckpt-00000004")
        {
            std::fs::copy(&p, run.join(&name)).unwrap();
        }
    }
    let metrics: String = std::fs::read_to_string(reference.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
                <= 30
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(run.join("metrics.jsonl"), metrics).unwrap();
    let files: Vec<_> = std::fs::read_dir(reference.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // Keep the records through step 30's scalars, then tear the next one.
    let bytes = std::fs::read(&files[0]).unwrap();
    let mut at = 0;
    let mut cut = None;
    while at < bytes.len() {
        let n = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let next = at + 16 + n;
        let data = &bytes[at + 12..at + 12 + n];
        // The step field (2, varint) follows the wall time (field 1, 8 bytes) in every event.
        if data.get(9) == Some(&0x10) && data.get(10) == Some(&35) {
            cut = Some(at + 12 + n / 2);
            break;
        }
        at = next;
    }
    let cut = cut.expect("a record of step 35");
    std::fs::write(
        run.join("tb").join(files[0].file_name().unwrap()),
        &bytes[..cut],
    )
    .unwrap();
    flex(&["resume", "--run-dir", run.to_str().unwrap()]);
    assert_tb_matches_metrics(&run);
    assert_eq!(
        common::metrics_scalars(&run)
            .iter()
            .filter(|m| m.1 == "loss")
            .map(|m| (m.0, m.2))
            .collect::<Vec<_>>(),
        common::metrics_scalars(&reference)
            .iter()
            .filter(|m| m.1 == "loss")
            .map(|m| (m.0, m.2))
            .collect::<Vec<_>>(),
        "the resumed run's losses differ from the uninterrupted run's"
    );
    assert_eq!(image_steps(&run, "curves"), vec![10, 20, 30, 40]);
    assert_eq!(texts(&run).len(), 1);
    assert_eq!(std::fs::read_dir(run.join("tb")).unwrap().count(), 2);
    // Resuming the finished run changes nothing.
    flex(&["resume", "--run-dir", run.to_str().unwrap()]);
    assert_tb_matches_metrics(&run);
    assert_eq!(std::fs::read_dir(run.join("tb")).unwrap().count(), 2);
}
