//! GPU tests: each family's training on a GPU backend matches the CPU on a tiny problem.
//!
//! A custom harness (libtest-mimic), so that a missing GPU shows as what it is: every test is
//! reported `ignored` (with the reason printed once) when the build or the machine has no
//! usable adapter — never as passed. With `ATTRACTOR_REQUIRE_GPU=1` (CI sets it; it installs a
//! software Vulkan adapter) a missing adapter fails every test instead. The [`gpu_tests!`]
//! table lists each test once and runs it on every GPU backend compiled in (wgpu; cuda too in
//! a `--features cuda` build), candle's `test_device!` pattern.

mod common;

use std::process::ExitCode;

use attractor::device::{DeviceChoice, select};
use attractor::rng::Rng;
use attractor::train::Trainable;
use attractor::transfer::to_vec_f32;
use burn::tensor::Device;
use libtest_mimic::{Arguments, Failed, Trial};

/// The device of `choice`, or why it is not usable here.
fn usable(choice: DeviceChoice) -> Result<Device, String> {
    if !attractor::device::compiled().contains(&choice) {
        return Err(format!("this build has no `{choice}` feature"));
    }
    if choice == DeviceChoice::Wgpu && attractor::device::wgpu_adapters().is_empty() {
        return Err(
            "no wgpu adapter (install a Vulkan driver; Debian's mesa-vulkan-drivers \
                    libvulkan1 gives a software one)"
                .into(),
        );
    }
    select(choice).map(|s| s.device).map_err(|e| e.to_string())
}

/// `gpu_tests![f, g, …]`: one trial per test and GPU backend, named `<backend>::<test>`.
macro_rules! gpu_tests {
    ($($f:ident),* $(,)?) => {{
        let mut trials = Vec::new();
        let require = std::env::var("ATTRACTOR_REQUIRE_GPU").is_ok_and(|v| v == "1");
        let mut backends = vec![DeviceChoice::Wgpu];
        if cfg!(feature = "cuda") {
            backends.push(DeviceChoice::Cuda);
        }
        for choice in backends {
            let dev = usable(choice);
            if let Err(why) = &dev {
                if require {
                    eprintln!("ATTRACTOR_REQUIRE_GPU=1 and {choice} is not usable: {why}");
                } else if choice == DeviceChoice::Wgpu {
                    eprintln!(
                        "{choice} tests ignored: {why} (ATTRACTOR_REQUIRE_GPU=1 makes this a failure)"
                    );
                }
                if !require && choice != DeviceChoice::Wgpu {
                    continue;
                }
            }
            $(
                let d = dev.clone();
                let t = Trial::test(format!("{choice}::{}", stringify!($f)), move || match d {
                    Ok(d) => $f(&d),
                    Err(why) => Err(Failed::from(format!("{choice} not usable: {why}"))),
                });
                trials.push(t.with_ignored_flag(dev.is_err() && !require));
            )*
        }
        trials
    }};
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let trials = gpu_tests![
        ddm_training_matches_cpu,
        nlm_training_is_deterministic_and_near_cpu,
        fep_training_matches_cpu,
        device_noise_is_standard_normal_and_seeded,
        ou_stationary_covariance_with_device_noise,
        nlm_langevin_transfer_free,
        nlm_resume_on_the_gpu_is_exact,
        training_steps_read_nothing_back_transfer,
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(msg().into()) }
}

/// DDM: three training iterations from the same pool give the same loss and parameters.
fn ddm_training_matches_cpu(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::ddm::{DdmConfig, DdmTrainer};
    let cfg = DdmConfig::new()
        .with_sde("ou-rot".into())
        .with_neurons(16)
        .with_batch(64)
        .with_iters(3)
        .with_pool_size(500)
        .with_pool_chains(50)
        .with_burn_in(0.1)
        .with_ridge_points(2000)
        .with_init("zero".into());
    let mut g = DdmTrainer::new(&cfg, gpu)?;
    let mut c = DdmTrainer::new(&cfg, &common::cpu())?;
    // Same pool on both (the pool simulation itself is backend-dependent in the last bits).
    g.pool = c.pool.clone();
    g.bbox = c.bbox.clone();
    for s in 0..3 {
        let lg = g.step(s)?.loss()?;
        let lc = c.step(s)?.loss()?;
        check(
            lg.is_finite() && (lg - lc).abs() <= 1e-3 * lc.abs().max(1e-3),
            || format!("step {s}: gpu loss {lg} vs cpu {lc}"),
        )?;
    }
    let params = |t: &DdmTrainer| -> Result<Vec<f32>, Failed> {
        let mut v = Vec::new();
        for n in ["read", "c", "A"] {
            v.extend(to_vec_f32(t.ddm.net.get(n))?);
        }
        Ok(v)
    };
    let (pg, pc) = (params(&g)?, params(&c)?);
    let maxdiff = pg
        .iter()
        .zip(&pc)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    check(maxdiff < 1e-3, || format!("parameters differ by {maxdiff}"))
}

/// NLM: on a GPU the Langevin noise is drawn on the device, so the numbers are not the CPU's;
/// five updates give the same couplings twice from the same seed (bit for bit), other couplings
/// from another seed, and a monitor (the contrastive gradient's squared norm) of the CPU's size.
fn nlm_training_is_deterministic_and_near_cpu(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    let n = 12;
    let mut r = Rng::new(17);
    let data: Vec<f32> = r.normal_vec(40 * n);
    let cfg = |seed| {
        NlmConfig::new()
            .with_n_data(40)
            .with_batch(16)
            .with_chains(16)
            .with_updates(5)
            .with_seed(seed)
    };
    let run = |seed, dev: &Device| -> Result<(Vec<f64>, Vec<f32>), Failed> {
        let mut t = NlmTrainer::new(&cfg(seed), data.clone(), n, dev)?;
        let mut losses = Vec::new();
        for u in 0..5 {
            losses.push(t.step(u)?.loss()?);
        }
        Ok((losses, to_vec_f32(&t.nlm.j)?))
    };
    let (la, ja) = run(2, gpu)?;
    let (lb, jb) = run(2, gpu)?;
    let (_, jo) = run(3, gpu)?;
    let (lc, _) = run(2, &common::cpu())?;
    check(la == lb && ja == jb, || {
        "same seed, different numbers on the GPU".into()
    })?;
    check(ja != jo, || "another seed gave the same couplings".into())?;
    let (mg, mc) = (la.iter().sum::<f64>() / 5.0, lc.iter().sum::<f64>() / 5.0);
    check(mg.is_finite() && mg > 0.5 * mc && mg < 2.0 * mc, || {
        format!("mean monitor {mg} on the GPU vs {mc} on the CPU")
    })
}

/// Resume on the GPU: 2 updates, a checkpoint, a fresh trainer restored from it and 2 more
/// updates give the couplings of 4 uninterrupted updates (the device noise is seeded from the
/// chain stream, whose state the checkpoint holds).
fn nlm_resume_on_the_gpu_is_exact(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    let n = 12;
    let mut r = Rng::new(8);
    let data: Vec<f32> = r.normal_vec(40 * n);
    let cfg = NlmConfig::new()
        .with_n_data(40)
        .with_batch(16)
        .with_chains(16)
        .with_updates(4)
        .with_seed(5);
    let mut whole = NlmTrainer::new(&cfg, data.clone(), n, gpu)?;
    for u in 0..4 {
        whole.step(u)?;
    }
    let mut first = NlmTrainer::new(&cfg, data.clone(), n, gpu)?;
    for u in 0..2 {
        first.step(u)?;
    }
    let ck = first.checkpoint(2)?;
    drop(first);
    let mut resumed = NlmTrainer::new(&cfg, data, n, gpu)?;
    resumed.restore(&ck)?;
    for u in 2..4 {
        resumed.step(u)?;
    }
    let (a, b) = (to_vec_f32(&whole.nlm.j)?, to_vec_f32(&resumed.nlm.j)?);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| ((x - y).abs() / x.abs().max(1e-3)) as f64)
        .fold(0.0, f64::max);
    check(worst <= 1e-5, || {
        format!("resumed couplings differ by {worst:e} (relative)")
    })
}

/// A training step on a GPU leaves its scalars on the device (the driver reads many steps'
/// scalars back at once): 5 NLM updates and 5 DDM iterations make no read-back. (They still
/// upload: the NLM its data minibatches, the DDM its pool indices and box points.)
fn training_steps_read_nothing_back_transfer(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::ddm::{DdmConfig, DdmTrainer};
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    use attractor::transfer::counts;
    let n = 16;
    let mut r = Rng::new(4);
    let data: Vec<f32> = r.normal_vec(64 * n);
    let cfg = NlmConfig::new()
        .with_n_data(64)
        .with_batch(16)
        .with_chains(16);
    let mut nlm = NlmTrainer::new(&cfg, data, n, gpu)?;
    let cfg = DdmConfig::new()
        .with_sde("ou-rot".into())
        .with_neurons(16)
        .with_batch(64)
        .with_pool_size(500)
        .with_pool_chains(50)
        .with_burn_in(0.1)
        .with_ridge_points(2000);
    let mut ddm = DdmTrainer::new(&cfg, gpu)?;
    let before = counts();
    let mut outs = Vec::new();
    for s in 0..5 {
        outs.push(nlm.step(s)?);
        outs.push(ddm.step(s)?);
    }
    let after = counts();
    check(after.downloads == before.downloads, || {
        format!("training steps read back: {before:?} -> {after:?}")
    })?;
    // The scalars are there when asked for.
    for o in &outs {
        check(o.loss()?.is_finite(), || "non-finite loss".into())?;
    }
    Ok(())
}

/// The device noise: mean 0, variance 1, the same numbers from the same seed.
fn device_noise_is_standard_normal_and_seeded(gpu: &Device) -> Result<(), Failed> {
    let draw = |seed| -> Result<Vec<f32>, Failed> {
        let mut rng = Rng::new(seed);
        Ok(to_vec_f32(&attractor::device::device_normal(
            &mut rng,
            [400, 500],
            gpu,
        ))?)
    };
    let (a, b, c) = (draw(1)?, draw(1)?, draw(2)?);
    check(a == b, || "same seed, different device noise".into())?;
    check(a != c, || "different seeds, same device noise".into())?;
    let n = a.len() as f64;
    let mean = a.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    // 200 000 draws: the mean's sd is 0.0022, the variance's 0.0032.
    check(mean.abs() < 0.01 && (var - 1.0).abs() < 0.015, || {
        format!("device noise mean {mean}, variance {var}")
    })
}

/// The Euler–Maruyama solver with device noise reaches the Ornstein–Uhlenbeck target's
/// stationary covariance ε·I = 0.5·I (ou-rot: dz = −Bz dt + √(2ε) dW).
fn ou_stationary_covariance_with_device_noise(gpu: &Device) -> Result<(), Failed> {
    use attractor::sde::builtin::Builtin;
    use attractor::sde::solver::EulerMaruyama;
    use attractor::sde::target::Target;
    let target = Target::Builtin(Builtin::new("ou-rot", &[], gpu)?);
    let k = 512;
    let mut rng = Rng::new(5);
    let em = EulerMaruyama::new(0.01, 1.0)?;
    let x0 = attractor::transfer::tensor2(&vec![0.0; 2 * k], k, 2, gpu);
    // t = 5 of burn-in (the covariance relaxes at rate 2), then 3 snapshots 1.5 time units
    // apart.
    let mut snaps = Vec::new();
    em.simulate_at(
        &target,
        x0,
        800,
        &mut rng,
        &mut |_| None,
        &|s| s == 500 || s == 650 || s == 800,
        &mut |s, x| {
            if s > 0 {
                snaps.extend(to_vec_f32(x)?);
            }
            Ok(())
        },
    )?;
    let n = (snaps.len() / 2) as f64;
    let (mut c11, mut c22, mut c12) = (0.0, 0.0, 0.0);
    for p in snaps.chunks(2) {
        let (a, b) = (p[0] as f64, p[1] as f64);
        c11 += a * a / n;
        c22 += b * b / n;
        c12 += a * b / n;
    }
    // 1 536 samples: the variance estimate's sd is about 0.5·√(2/1536) ≈ 0.018.
    check(
        (c11 - 0.5).abs() < 0.08 && (c22 - 0.5).abs() < 0.08 && c12.abs() < 0.08,
        || format!("stationary covariance [[{c11}, {c12}], [{c12}, {c22}]], expected 0.5 I"),
    )
}

/// No host↔device copy inside the Langevin loop on a GPU: K = 20 steps of the NLM's
/// dynamics (noise drawn on the device) make no upload and no read-back.
fn nlm_langevin_transfer_free(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    use attractor::sde::solver::EulerMaruyama;
    let n = 16;
    let mut r = Rng::new(4);
    let data: Vec<f32> = r.normal_vec(40 * n);
    let cfg = NlmConfig::new()
        .with_n_data(40)
        .with_batch(16)
        .with_chains(16);
    let t = NlmTrainer::new(&cfg, data, n, gpu)?;
    let x0 = attractor::transfer::tensor2_f32(r.normal_vec(32 * n), 32, n, gpu);
    let em = EulerMaruyama::new(cfg.dt, 1.0)?;
    let before = attractor::transfer::counts();
    let x = em.advance(&t.nlm, x0, 20, &mut r)?;
    let after = attractor::transfer::counts();
    check(after == before, || {
        format!("the Langevin loop copied: {before:?} -> {after:?}")
    })?;
    let v = to_vec_f32(&x)?;
    check(v.iter().all(|x| x.is_finite()), || {
        "non-finite chains".into()
    })
}

/// FEP: three epochs (batched GEMV, continuous-Bernoulli sampler, deferred coupling updates
/// folded inside and at the end of epochs) give the same ‖ΔJ‖² and couplings.
fn fep_training_matches_cpu(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::fep::{FepConfig, FepTrainer};
    let (p, n) = (3, 8);
    let mut r = Rng::new(9);
    let pats: Vec<f64> = (0..p * n).map(|_| r.normal()).collect();
    let cfg = FepConfig::new()
        .with_networks(2)
        .with_steps_per_epoch(20)
        .with_lr(0.01)
        .with_beta(0.5)
        .with_evidence(2.0);
    let mut g = FepTrainer::new(&cfg, pats.clone(), n, gpu)?;
    let mut c = FepTrainer::new(&cfg, pats, n, &common::cpu())?;
    for e in 0..3 {
        let (lg, lc) = (g.step(e)?.loss()?, c.step(e)?.loss()?);
        check((lg - lc).abs() <= 1e-3 * lc.abs().max(1e-6), || {
            format!("epoch {e}: gpu ‖ΔJ‖² {lg} vs cpu {lc}")
        })?;
    }
    for k in 0..2 {
        let (jg, jc) = (g.j_host(k)?, c.j_host(k)?);
        let scale = jc.iter().map(|x| x.abs()).fold(0.0, f64::max);
        let diff = jg
            .iter()
            .zip(&jc)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        check(scale > 1e-3 && diff < 1e-3 * scale, || {
            format!("network {k}: J differs by {diff} (scale {scale})")
        })?;
    }
    Ok(())
}
