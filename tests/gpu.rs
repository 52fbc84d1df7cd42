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
use attractor::sde::Sde;
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
    // As the command line does: no libwayland "XDG_RUNTIME_DIR is invalid" lines on a headless
    // machine (before any thread exists).
    attractor::device::quiet_headless_vulkan();
    let mut args = Arguments::from_args();
    // One device: its tests run one after another unless asked otherwise (run side by side,
    // they wait on each other's synchronisations and take several times longer).
    if args.test_threads.is_none() {
        args.test_threads = Some(1);
    }
    let trials = gpu_tests![
        ddm_training_matches_cpu,
        nlm_training_is_deterministic_and_near_cpu,
        fep_training_matches_cpu,
        device_noise_is_standard_normal_and_seeded,
        ou_stationary_covariance_with_device_noise,
        nlm_langevin_transfer_free,
        nlm_resume_on_the_gpu_is_exact,
        ddm_loops_transfer_free,
        nlm_loops_transfer_free,
        fep_epochs_transfer_free,
        nlm_statistics_match_cpu,
        autotune_cache_lives_in_the_run_directory,
        ddm_and_fep_resume_on_the_gpu_is_exact,
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(msg().into()) }
}

/// DDM on a GPU draws its training points there, so its iterations are not the CPU's. Checked
/// instead: (1) the objective and its closed-form gradients on the same points agree with the
/// CPU's; (2) a tiny ou-rot run (ridge start, 20 iterations) reaches a drift error below 1e-2 on
/// both devices.
fn ddm_training_matches_cpu(gpu: &Device) -> Result<(), Failed> {
    use attractor::analysis::ddm::drift_rel_err;
    use attractor::models::ddm::{DdmConfig, DdmTrainer, analytic_grads};
    const ITERS: u64 = 20;
    let cfg = DdmConfig::new()
        .with_sde(attractor::sde::builtin::Kind::OuRot.into())
        .with_neurons(64)
        .with_batch(256)
        .with_iters(ITERS)
        .with_pool_size(500)
        .with_pool_chains(100)
        .with_burn_in(1.0)
        .with_ridge_points(2000);
    let cpu = common::cpu();
    let mut g = DdmTrainer::new(&cfg, gpu)?;
    let mut c = DdmTrainer::new(&cfg, &cpu)?;
    // (1) Same network and points on both devices.
    let mut rng = Rng::new(3);
    let (zc, _) = c.sample_points(128, &mut rng);
    let zv = to_vec_f32(&zc)?;
    let zg = attractor::transfer::tensor2_f32(zv, 128, 2, gpu);
    let net_c = c.ddm.net.clone();
    let mut net_g = g.ddm.net.clone();
    for name in ["U", "read", "c", "A", "h"] {
        let v = to_vec_f32(net_c.get(name))?;
        let [r, k] = net_c.get(name).dims();
        net_g.set(name, attractor::transfer::tensor2_f32(v, r, k, gpu));
    }
    let eval = |t: &DdmTrainer, net, z: burn::tensor::Tensor<2>| -> Result<Vec<f32>, Failed> {
        let f = t.ddm.target.drift(z.clone(), None);
        let ggt = t.target_ggt(&z);
        let (l, grads) = analytic_grads(net, &t.ddm.cfg, z, None, f, &ggt, t.drift_norm());
        let mut v = to_vec_f32(&l.total)?;
        for (_, gr) in grads {
            v.extend(to_vec_f32(&gr)?);
        }
        Ok(v)
    };
    let (vg, vc) = (eval(&g, &net_g, zg)?, eval(&c, &net_c, zc)?);
    let scale = vc.iter().map(|x| x.abs()).fold(1e-6f32, f32::max);
    let worst = vg
        .iter()
        .zip(&vc)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    check(vg.len() == vc.len() && worst <= 1e-3 * scale, || {
        format!("objective/gradients differ by {worst} (scale {scale})")
    })?;
    // (2) Training on each device.
    let mut errs = Vec::new();
    for t in [&mut g, &mut c] {
        for s in 0..ITERS {
            check(t.step(s)?.loss()?.is_finite(), || "non-finite loss".into())?;
        }
        errs.push(drift_rel_err(&t.ddm, 2000, &mut Rng::new(11))?);
    }
    eprintln!(
        "ddm ou-rot drift error: gpu {:.2e}, cpu {:.2e}",
        errs[0], errs[1]
    );
    check(errs.iter().all(|&e| e < 1e-2), || {
        format!(
            "drift error after {ITERS} iterations: gpu {}, cpu {}",
            errs[0], errs[1]
        )
    })
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

/// After a first step (which may upload what a trainer keeps on the device), 5 more steps
/// make no copy at all.
fn steps_copy_nothing(t: &mut dyn Trainable, what: &str) -> Result<(), Failed> {
    use attractor::transfer::counts;
    t.step(0)?;
    let before = counts();
    for s in 1..6 {
        t.step(s)?;
    }
    let after = counts();
    check(after == before, || {
        format!("5 {what} copied: {before:?} -> {after:?}")
    })
}

/// Host↔device copies made while `f` runs.
fn copies(f: &mut dyn FnMut() -> Result<(), Failed>) -> Result<u64, Failed> {
    use attractor::transfer::counts;
    let b = counts();
    f()?;
    Ok(counts().total() - b.total())
}

/// The tiny ou-rot DDM the copy and resume tests share (one shape: lavapipe compiles its
/// kernels once).
fn tiny_ddm() -> attractor::models::ddm::DdmConfig {
    attractor::models::ddm::DdmConfig::new()
        .with_sde(attractor::sde::builtin::Kind::OuRot.into())
        .with_neurons(16)
        .with_batch(64)
        .with_pool_size(100)
        .with_pool_chains(50)
        .with_burn_in(0.1)
        .with_ridge_points(500)
}

/// Largest relative difference between two parameter vectors.
fn worst(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y).abs() / x.abs().max(1e-3)) as f64)
        .fold(0.0, f64::max)
}
/// 4 steps uninterrupted vs 2 steps, a checkpoint, a fresh trainer restored from it and 2
/// more: the largest relative difference of the parameters `read` returns.
fn drill<T: Trainable>(
    make: &dyn Fn() -> Result<T, Failed>,
    read: &dyn Fn(&T) -> Result<Vec<f32>, Failed>,
) -> Result<f64, Failed> {
    let mut whole = make()?;
    for s in 0..4 {
        whole.step(s)?;
    }
    let mut first = make()?;
    for s in 0..2 {
        first.step(s)?;
    }
    let ck = first.checkpoint(2)?;
    drop(first);
    let mut resumed = make()?;
    resumed.restore(&ck)?;
    for s in 2..4 {
        resumed.step(s)?;
    }
    Ok(worst(&read(&whole)?, &read(&resumed)?))
}
/// Resume on the GPU: 2 updates, a checkpoint, a fresh trainer restored from it and 2 more
/// updates give the couplings of 4 uninterrupted updates (the device noise is seeded from the
/// chain stream, whose state the checkpoint holds).
fn nlm_resume_on_the_gpu_is_exact(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    let n = 12;
    let data: Vec<f32> = Rng::new(8).normal_vec(40 * n);
    let cfg = NlmConfig::new()
        .with_n_data(40)
        .with_batch(16)
        .with_chains(16)
        .with_updates(4)
        .with_seed(5);
    let d = drill(
        &|| Ok(NlmTrainer::new(&cfg, data.clone(), n, gpu)?),
        &|t: &NlmTrainer| Ok(to_vec_f32(&t.nlm.j)?),
    )?;
    check(d <= 1e-5, || {
        format!("resumed couplings differ by {d:e} (relative)")
    })
}

/// The device noise: mean 0, variance 1, the same numbers from the same seed.
fn device_noise_is_standard_normal_and_seeded(gpu: &Device) -> Result<(), Failed> {
    let draw = |seed| -> Result<Vec<f32>, Failed> {
        let mut rng = Rng::new(seed);
        Ok(to_vec_f32(&attractor::device::device_normal(
            rng.next_u64(),
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

/// FEP on a GPU draws its uniforms there, so its epochs are not the CPU's. Sim 3 (short):
/// cyclic presentation of three patterns makes J asymmetric (> 0.7) on both devices, and a
/// free run at β = 1 with J's learned couplings steps forward through the sequence.
fn fep_training_matches_cpu(gpu: &Device) -> Result<(), Failed> {
    use attractor::analysis::fep::{asymmetry, free::forward_fraction, infer_mean};
    use attractor::models::fep::{Engine, FepConfig, FepTrainer, Order};
    let n = 64;
    let mut rng = Rng::new(5);
    let pats = common::zscored_patterns(&mut rng, 3, n);
    let cfg = FepConfig::new()
        .with_evidence(20.0)
        .with_beta(1.0)
        .with_lr(0.001)
        .with_epochs(2000)
        .with_steps_per_epoch(1)
        .with_order(Order::Sequential)
        .with_engine(Engine::Tensor);
    for (dev, what) in [(gpu.clone(), "gpu"), (common::cpu(), "cpu")] {
        let mut t = FepTrainer::new(&cfg, pats.clone(), n, &dev)?;
        for e in 0..cfg.epochs {
            t.step(e)?;
        }
        let j = t.j_host(0)?;
        let a = asymmetry(&j, n);
        check(a > 0.7, || format!("{what}: asymmetry {a}"))?;
        // Free run (host, from J read once): labels advance k -> k+1.
        let mut r = Rng::new(2);
        let mut state = pats[..n].to_vec();
        let zero = vec![0.0; n];
        let mut states = Vec::new();
        for _ in 0..300 {
            infer_mean(&j, n, &zero, 1.0, &mut state, 1, 1, &mut r);
            states.push(state.clone());
        }
        let (_, fwd, changes) = forward_fraction(&states, &pats, n, 0.5);
        eprintln!("fep sim3 {what}: asymmetry {a:.3}, forward {fwd:.3} of {changes} changes");
        check(changes >= 3 && fwd > 0.8, || {
            format!("{what}: forward transitions {fwd} of {changes} changes")
        })?;
    }
    Ok(())
}

/// No copy grows with the number of steps in the DDM's device loops: training iterations
/// (none at all: points drawn on the device, scalars left there for the driver), pool sampling, simulation with the EPR estimator, the Lyapunov estimate —
/// each run twice with 4× the steps, the copies counted.
fn ddm_loops_transfer_free(gpu: &Device) -> Result<(), Failed> {
    use attractor::analysis::ddm::{SimSpec, lyapunov_max, simulate};
    use attractor::models::ddm::{DdmTrainer, stationary_samples};
    let cfg = tiny_ddm();
    let mut t = DdmTrainer::new(&cfg, gpu)?;
    steps_copy_nothing(&mut t, "DDM iterations")?;
    let ddm = t.ddm.clone();
    let x0 = attractor::transfer::tensor2(&vec![0.1; 64], 32, 2, gpu);
    let pool = |steps: f64| {
        let x0 = x0.clone();
        let ddm = &ddm;
        move || -> Result<(), Failed> {
            let mut r = Rng::new(1);
            stationary_samples(
                &ddm.target,
                x0.clone(),
                96,
                steps,
                0.1,
                0.01,
                &mut r,
                &|x| x.clone(),
            )?;
            Ok(())
        }
    };
    let (a, b) = (copies(&mut pool(0.2))?, copies(&mut pool(0.8))?);
    check(a == b, || {
        format!("pool sampling: {a} copies for 20 steps, {b} for 80")
    })?;
    let sim = |t_end: f64, target: bool| {
        let ddm = &ddm;
        move || -> Result<(), Failed> {
            let spec = SimSpec {
                target,
                dt: 0.01,
                t_end,
                burn_in: 0.05,
                noise_scale: 1.0,
                record_every: 2,
                epr: true,
            };
            let z0 = vec![0.2; 16];
            let out = simulate(ddm, &spec, &z0, &mut Rng::new(3), &mut |_| None)?;
            check(out.epr.is_some_and(f64::is_finite), || "no EPR".into())
        }
    };
    for target in [true, false] {
        let (a, b) = (
            copies(&mut sim(0.3, target))?,
            copies(&mut sim(1.2, target))?,
        );
        check(a == b, || {
            format!("simulate (target {target}): {a} copies for 30 steps, {b} for 120")
        })?;
    }
    let lyap = |t_total: f64| {
        let ddm = &ddm;
        move || -> Result<(), Failed> {
            let z0 = vec![0.3, -0.2, 0.1, 0.4];
            let l = lyapunov_max(&ddm.target, &z0, 2, 0.01, t_total, 0.1, gpu)?;
            check(l.is_finite() && l < 0.0, || {
                format!("ou-rot Lyapunov exponent {l}")
            })
        }
    };
    let (a, b) = (copies(&mut lyap(0.5))?, copies(&mut lyap(2.0))?);
    check(a == b, || {
        format!("Lyapunov: {a} copies for 5 blocks, {b} for 20")
    })
}

/// No copy grows with the number of steps in the NLM's loops: training updates (none at all:
/// minibatches are selected on the device), generation with recorded frames, denoising.
fn nlm_loops_transfer_free(gpu: &Device) -> Result<(), Failed> {
    use attractor::analysis::nlm::{Corruption, denoise, generate};
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    let n = 16;
    let mut r = Rng::new(4);
    let data: Vec<f32> = r.normal_vec(64 * n);
    let cfg = NlmConfig::new()
        .with_n_data(64)
        .with_batch(16)
        .with_chains(16);
    let mut t = NlmTrainer::new(&cfg, data.clone(), n, gpu)?;
    steps_copy_nothing(&mut t, "NLM updates")?;
    let nlm = t.nlm.clone();
    let gen_ = |steps: usize| {
        let nlm = &nlm;
        move || -> Result<(), Failed> {
            let record = [steps / 4, steps / 2];
            let (frames, _) = generate(nlm, 8, steps, cfg.dt, &record, &mut Rng::new(1), gpu)?;
            check(frames.len() == 3, || format!("{} frames", frames.len()))
        }
    };
    let (a, b) = (copies(&mut gen_(10))?, copies(&mut gen_(40))?);
    check(a == b, || {
        format!("generation: {a} copies for 10 steps, {b} for 40")
    })?;
    let den = |steps: usize| {
        let nlm = &nlm;
        let clean = &data[..4 * n];
        move || -> Result<(), Failed> {
            let d = denoise(
                nlm,
                clean,
                Corruption::Gauss(0.3),
                steps,
                cfg.dt,
                Some(1e3),
                &mut Rng::new(2),
                gpu,
            )?;
            check(d.mse.len() == steps + 1, || {
                format!("{} MSE values", d.mse.len())
            })
        }
    };
    let (a, b) = (copies(&mut den(10))?, copies(&mut den(40))?);
    check(a == b, || {
        format!("denoising: {a} copies for 10 steps, {b} for 40")
    })
}

/// No copy in the FEP tensor engine's epochs on a GPU once its constants are there (patterns,
/// β, evidence mirrored; uniforms drawn on the device), and the batched read of J the sweep
/// scores from is one copy. (`fep run-free`, `recall` and the attractor search iterate on the
/// host from J read once.)
fn fep_epochs_transfer_free(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::fep::{Engine, FepConfig, FepTrainer, Order};
    use attractor::transfer::counts;
    let (p, n) = (3, 16);
    let mut r = Rng::new(9);
    let pats: Vec<f64> = (0..p * n).map(|_| r.normal()).collect();
    for order in [Order::Random, Order::Sequential] {
        let cfg = FepConfig::new()
            .with_networks(6)
            .with_steps_per_epoch(10)
            .with_order(order)
            .with_engine(Engine::Tensor);
        let mut t = FepTrainer::new(&cfg, pats.clone(), n, gpu)?;
        t.step(0)?;
        let before = counts();
        let mut outs = Vec::new();
        for e in 1..6 {
            outs.push(t.step(e)?);
        }
        let after = counts();
        check(after == before, || {
            format!("5 FEP epochs ({order}) copied: {before:?} -> {after:?}")
        })?;
        for o in &outs {
            check(o.loss()?.is_finite(), || "non-finite ‖ΔJ‖²".into())?;
        }
        let b = counts();
        let js = t.j_host_all()?;
        check(js.len() == 6 && counts().total() - b.total() == 1, || {
            "reading every network's J took more than one copy".into()
        })?;
    }
    Ok(())
}

/// NLM on wgpu vs flex, statistically: a 50-update run's sample energy (½E²) and chain mean pixel,
/// over 3 seeds each; the GPU's mean lies within the CPU's spread (min − 25 % … max + 25 % of
/// the range, at least ±3 CPU standard deviations).
fn nlm_statistics_match_cpu(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    let n = 16;
    let mut r = Rng::new(21);
    // Data with a clear polarity: mean pixel of tanh x about −0.5.
    let data: Vec<f32> = r.normal_vec(80 * n).iter().map(|v| v * 0.5 - 0.6).collect();
    let cfg = |seed| {
        NlmConfig::new()
            .with_n_data(80)
            .with_batch(20)
            .with_chains(20)
            .with_updates(50)
            .with_seed(seed)
    };
    let run = |seed, dev: &Device| -> Result<(f64, f64), Failed> {
        let mut t = NlmTrainer::new(&cfg(seed), data.clone(), n, dev)?;
        let mut last = Vec::new();
        for u in 0..50 {
            let o = t.step(u)?;
            if u >= 40 {
                last.push(o.read()?);
            }
        }
        let get = |k: &str| {
            last.iter()
                .flat_map(|v| v.iter().filter(|(n, _)| n == k).map(|(_, x)| *x))
                .sum::<f64>()
                / last.len() as f64
        };
        Ok((get("energy_model"), get("chain_mean_pixel")))
    };
    let (mut cpu, mut gpu_) = (Vec::new(), Vec::new());
    for seed in [1, 2, 3] {
        cpu.push(run(seed, &common::cpu())?);
        gpu_.push(run(seed, gpu)?);
    }
    for (i, what) in [(0, "sample energy"), (1, "mean pixel")] {
        let pick = |v: &[(f64, f64)]| -> Vec<f64> {
            v.iter().map(|x| if i == 0 { x.0 } else { x.1 }).collect()
        };
        let (c, g) = (pick(&cpu), pick(&gpu_));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (lo, hi) = c
            .iter()
            .fold((f64::MAX, f64::MIN), |a, &x| (a.0.min(x), a.1.max(x)));
        let sd = (c.iter().map(|x| (x - mean(&c)).powi(2)).sum::<f64>() / 2.0).sqrt();
        let pad = (0.25 * (hi - lo)).max(3.0 * sd).max(1e-3 * mean(&c).abs());
        let gm = mean(&g);
        eprintln!("nlm {what}: cpu {c:?}, gpu {g:?}");
        check(
            g.iter().all(|x| x.is_finite()) && gm >= lo - pad && gm <= hi + pad,
            || format!("{what}: gpu mean {gm} outside the cpu spread [{lo}, {hi}] ± {pad}"),
        )?;
    }
    Ok(())
}

/// The training driver keeps the GPU backend's autotune results in `<run>/autotune/`, so a
/// resumed run finds the kernels it chose before (cubecl's persistent cache).
fn autotune_cache_lives_in_the_run_directory(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::nlm::{NlmConfig, NlmTrainer};
    use attractor::run::RunDir;
    use attractor::train::{DriverOptions, run};
    let n = 16;
    let data: Vec<f32> = Rng::new(6).normal_vec(64 * n);
    let cfg = NlmConfig::new()
        .with_n_data(64)
        .with_batch(16)
        .with_chains(16)
        .with_updates(3);
    let mut t = NlmTrainer::new(&cfg, data, n, gpu)?;
    let dir = common::tmpdir("gpu-autotune");
    let rd = RunDir::create(&dir.join("run"), false)?;
    let opts = DriverOptions {
        total_steps: 3,
        until: None,
        checkpoint_every: 3,
        log_every: 1,
        keep: 2,
        milestones: Vec::new(),
        milestone_dir: "milestones",
        tensorboard: true,
    };
    run(&mut t, &rd, 0, &opts, &Default::default())?;
    let cache = rd.path().join("autotune");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .map_err(|e| format!("no autotune folder {}: {e}", cache.display()))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".db"))
        .collect();
    check(!files.is_empty(), || {
        format!("no autotune database in {}", cache.display())
    })
}

/// Resume on the GPU for the DDM and FEP trainers: a checkpoint after 2 steps, restored into a
/// fresh trainer, then 2 more steps give the parameters of 4 uninterrupted steps (the device
/// draws are seeded from streams the checkpoint holds; the DDM's pool and the FEP's constants
/// are put back on the device at restore).
fn ddm_and_fep_resume_on_the_gpu_is_exact(gpu: &Device) -> Result<(), Failed> {
    use attractor::models::ddm::DdmTrainer;
    use attractor::models::fep::{Engine, FepConfig, FepTrainer, Order};
    let dcfg = tiny_ddm().with_seed(4);
    let d = drill(&|| Ok(DdmTrainer::new(&dcfg, gpu)?), &|t: &DdmTrainer| {
        let mut v = Vec::new();
        for n in ["read", "c", "A"] {
            v.extend(to_vec_f32(t.ddm.net.get(n))?);
        }
        Ok(v)
    })?;
    check(d <= 1e-5, || {
        format!("DDM: resumed parameters differ by {d:e} (relative)")
    })?;
    let (p, n) = (3, 16);
    let mut r = Rng::new(9);
    let pats: Vec<f64> = (0..p * n).map(|_| r.normal()).collect();
    let fcfg = FepConfig::new()
        .with_networks(6)
        .with_steps_per_epoch(10)
        .with_order(Order::Random)
        .with_engine(Engine::Tensor);
    let f = drill(
        &|| Ok(FepTrainer::new(&fcfg, pats.clone(), n, gpu)?),
        &|t: &FepTrainer| Ok(t.j_host_all()?.concat().iter().map(|&x| x as f32).collect()),
    )?;
    check(f <= 1e-5, || {
        format!("FEP: resumed couplings differ by {f:e} (relative)")
    })
}
