//! A trained run directory read as a Burn module by a plain Burn program.
//!
//! With a run directory as argument (`checkpoints/<run>` of `attractor nlm train`), loads its
//! NLM; with none, first trains a small one (100 updates on the bundled digits, 7×7) into a
//! temporary run directory with `attractor::api::train`. Then, with `Run::open`:
//! 1. builds the module the Burn way — `NlmModelConfig::load("model.json")`, `init`,
//!    `load_file("model.bpk")` — and checks it against `attractor::load_model`;
//! 2. counts its parameters, moves it to another device with `to_device`;
//! 3. runs one forward pass (the energy of the training images) and one Langevin step.
//!
//! Run: `cargo run --release --example load_trained [RUN_DIR]`

use std::path::PathBuf;

use anyhow::{Context, Result};
use attractor::api::{Ctx, Run, RunPlace, train};
use attractor::device::{DeviceChoice, select};
use attractor::models::nlm::{Nlm, NlmConfig, NlmModelConfig};
use attractor::transfer::{tensor2_f32, to_vec_f32};
use burn::config::Config;
use burn::module::Module;

fn main() -> Result<()> {
    let device = select(DeviceChoice::Flex)?.device;
    let given = std::env::args().nth(1);
    let dir = match &given {
        Some(d) => PathBuf::from(d),
        None => {
            let dir =
                std::env::temp_dir().join(format!("attractor-example-{}", std::process::id()));
            let cfg = NlmConfig::new()
                .with_pool(4)
                .with_n_data(300)
                .with_chains(32)
                .with_batch(32)
                .with_updates(100)
                .with_polarity_chains(0);
            let r = train(
                cfg,
                &RunPlace::at(&dir).overwrite(),
                &Ctx::new(device.clone()),
            )?;
            println!("trained {} updates into {}", r.step, dir.display());
            dir
        }
    };
    let run = Run::open(&dir)?;
    println!(
        "{}: a {} run, {} of {:?} steps done",
        dir.display(),
        run.kind(),
        run.step()?,
        run.status()?.total_steps
    );

    // 1. The Burn way: configuration, init, record.
    let model_cfg = NlmModelConfig::load(dir.join("model.json"))
        .with_context(|| format!("{} has no model.json", dir.display()))?;
    let nlm: Nlm = model_cfg
        .init(&device)
        .try_load_file(dir.join("model.bpk"))
        .map_err(|e| anyhow::anyhow!("cannot load model.bpk: {e:?}"))?;
    let same: Nlm = run.load_model(&device)?;
    anyhow::ensure!(
        to_vec_f32(&nlm.j)? == to_vec_f32(&same.j)?,
        "two loads differ"
    );

    // 2. Parameters and devices.
    let n = nlm.n();
    println!(
        "NLM with N = {n} neurons, T = {}: {} parameters",
        nlm.temperature,
        nlm.num_params()
    );
    #[cfg(feature = "ndarray")]
    let nlm = nlm.to_device(&select(DeviceChoice::Ndarray)?.device);
    let device = nlm.j.device();

    // 3. A forward pass and one Langevin step (dx = F dt + √(2T) dW) from noise.
    let mut rng = attractor::rng::Rng::new(3);
    let x = tensor2_f32(rng.normal_vec(8 * n), 8, n, &device);
    let energy = to_vec_f32(&nlm.energy(x.clone()))?;
    let dt = 0.01;
    let noise = tensor2_f32(rng.normal_vec(8 * n), 8, n, &device);
    let x1 = x.clone()
        + nlm.force(x).mul_scalar(dt)
        + noise.mul_scalar((2.0 * nlm.temperature * dt).sqrt());
    let energy1 = to_vec_f32(&nlm.energy(x1))?;
    println!(
        "energy of 8 noise states: {:.2} -> {:.2} after one Langevin step",
        energy[0], energy1[0]
    );
    if given.is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
