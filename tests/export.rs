//! Trained networks as Burn modules: every run directory holds `model.bpk` (Burn's record) and
//! `model.json`, `attractor::load_model` gives the typed module back with the newest
//! checkpoint's values, a run without the export (earlier releases) loads from its checkpoint,
//! and parameter ids do not depend on the process.

mod common;

use std::path::Path;

use attractor::checkpoint::{self, Checkpoint};
use attractor::models::ctrnn::CtRnn;
use attractor::models::export::{CONFIG_FILE, RECORD_FILE};
use attractor::models::fep::FepNetworks;
use attractor::models::nlm::Nlm;
use attractor::models::param_id;
use attractor::transfer::to_vec_f32;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use common::{attractor, tmpdir};

fn ok(args: &[&str]) {
    let o = attractor(args);
    assert!(o.status.success(), "{}", common::stderr(&o));
}

fn newest(dir: &Path) -> Checkpoint {
    checkpoint::load_latest(dir).unwrap().unwrap()
}

fn array(ck: &Checkpoint, name: &str) -> Vec<f32> {
    ck.array(name).unwrap().data.clone()
}

/// (path, id) of every float parameter.
struct Ids(Vec<u64>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(p.id.val());
    }
}

fn ids<M: Module>(m: &M) -> Vec<u64> {
    let mut v = Ids(Vec::new());
    m.visit(&mut v);
    v.0
}

/// Loads as `M`, then again with the export removed (a run of an earlier release: from the
/// checkpoint); both must hold the same values.
fn both_ways<M: attractor::models::export::TrainedModel>(
    run: &Path,
    values: impl Fn(&M) -> Vec<Vec<f32>>,
) -> M {
    let dev = common::cpu();
    assert!(run.join(RECORD_FILE).is_file() && run.join(CONFIG_FILE).is_file());
    let m: M = attractor::load_model(run, &dev).unwrap();
    let copy = tmpdir("export-old");
    for e in std::fs::read_dir(run).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if p.is_file() && name != RECORD_FILE && name != CONFIG_FILE {
            std::fs::copy(&p, copy.join(name)).unwrap();
        }
    }
    let old: M = attractor::load_model(&copy, &dev).unwrap();
    assert_eq!(values(&m), values(&old));
    m
}

#[test]
fn nlm_run_exports_a_burn_module() {
    let t = tmpdir("export-nlm");
    let run = t.join("run");
    let r = run.to_str().unwrap();
    ok(&[
        "--device",
        "flex",
        "--quiet",
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
        "6",
        "--run-dir",
        r,
    ]);
    let nlm: Nlm = both_ways(&run, |m: &Nlm| {
        vec![to_vec_f32(&m.j).unwrap(), to_vec_f32(&m.b).unwrap()]
    });
    let ck = newest(&run);
    assert_eq!(ck.step, 6);
    assert_eq!(to_vec_f32(&nlm.j).unwrap(), array(&ck, "J"));
    assert_eq!(to_vec_f32(&nlm.b).unwrap(), array(&ck, "b"));
    assert_eq!(nlm.num_params(), 49 * 49 + 49);
    assert_eq!(ids(&nlm), vec![param_id("nlm.J"), param_id("nlm.b")]);
    // `attractor export --format burnpack` writes the same module elsewhere.
    let out = t.join("out");
    ok(&[
        "--quiet",
        "export",
        "--run-dir",
        r,
        "--format",
        "burnpack",
        "--out",
        out.to_str().unwrap(),
    ]);
    let again: Nlm = attractor::load_model(&out, &common::cpu()).unwrap();
    assert_eq!(to_vec_f32(&again.j).unwrap(), array(&ck, "J"));
    // The wrong family is refused naming both.
    let err = attractor::load_model::<CtRnn>(&run, &common::cpu())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nlm") && err.contains("ddm"), "{err}");
}

#[test]
fn ddm_run_exports_a_burn_module() {
    let t = tmpdir("export-ddm");
    let run = t.join("run");
    let args = common::ddm_train_args(&run, "5", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    let names = attractor::models::ctrnn::TENSORS;
    let net: CtRnn = both_ways(&run, |m: &CtRnn| {
        names
            .iter()
            .map(|n| to_vec_f32(m.get(n)).unwrap())
            .collect()
    });
    let ck = newest(&run);
    for n in names {
        assert_eq!(to_vec_f32(net.get(n)).unwrap(), array(&ck, n), "{n}");
    }
    let counted: usize = names.iter().map(|n| ck.array(n).unwrap().data.len()).sum();
    assert_eq!(net.num_params(), counted);
    // Parameter ids are fixed by name (the record of one process loads in another).
    let want: Vec<u64> = ["U", "h", "B_perp", "read", "c", "A", "M"]
        .iter()
        .map(|n| param_id(&format!("ctrnn.{n}")))
        .collect();
    assert_eq!(ids(&net), want);
}

#[test]
fn fep_run_exports_a_burn_module() {
    let t = tmpdir("export-fep");
    let f = t.join("p.csv");
    std::fs::write(&f, "1,0,0,1,0,1\n0,1,1,0,0,1\n1,1,0,0,1,0\n").unwrap();
    let run = t.join("run");
    ok(&[
        "--device",
        "flex",
        "--quiet",
        "fep",
        "train",
        "--patterns",
        f.to_str().unwrap(),
        "--epochs",
        "30",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    let nets: FepNetworks = both_ways(&run, |m: &FepNetworks| {
        vec![to_vec_f32(&m.j).unwrap(), to_vec_f32(&m.state).unwrap()]
    });
    let ck = newest(&run);
    assert_eq!(to_vec_f32(&nets.j).unwrap(), array(&ck, "J"));
    assert_eq!((nets.networks(), nets.neurons()), (1, 6));
    assert!(
        array(&ck, "J").iter().any(|&x| x != 0.0),
        "training changed nothing"
    );
}
