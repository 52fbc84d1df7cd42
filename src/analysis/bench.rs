//! `attractor bench`: throughput of the hot loops on each compiled backend.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::device::{self, DeviceChoice};
use crate::models::ctrnn::NetworkSde;
use crate::models::ddm::{DdmConfig, DdmTrainer};
use crate::rng::Rng;
use crate::sde::solver::EulerMaruyama;
use crate::train::Trainable;
use crate::transfer::{tensor2, to_vec_f32};

/// Arguments of `bench ddm`.
#[derive(Args, Debug, Clone)]
pub struct DdmBenchArgs {
    /// Network sizes.
    #[arg(long, value_delimiter = ',', default_value = "200,500")]
    pub neurons: Vec<usize>,
    /// Timed training iterations per size.
    #[arg(long, default_value_t = 300)]
    pub iters: u64,
    /// Batch size.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Timed simulation steps (N = 500, 256 trajectories, as the PyTorch reference).
    #[arg(long, default_value_t = 1000)]
    pub sim_steps: usize,
    /// Trajectories simulated together.
    #[arg(long, default_value_t = 256)]
    pub trajectories: usize,
    /// Backends to measure (default: the global `--device` when given, else every compiled
    /// one; wgpu only with a hardware GPU).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceChoice>,
    /// Gradient path of the training benchmark.
    #[arg(long, value_enum, default_value_t = crate::models::ddm::Grad::Auto)]
    pub grad: crate::models::ddm::Grad,
    /// Machine's measured f32 GEMM peak in GFLOP/s, printed beside the achieved rate.
    #[arg(long)]
    pub peak_gflops: Option<f64>,
}

fn default_devices() -> Vec<DeviceChoice> {
    let mut v: Vec<DeviceChoice> = device::compiled()
        .into_iter()
        .filter(|d| matches!(d, DeviceChoice::Flex | DeviceChoice::Ndarray))
        .collect();
    if cfg!(feature = "cuda") && device::cuda_devices().is_ok() {
        v.push(DeviceChoice::Cuda);
    }
    #[cfg(feature = "wgpu")]
    if device::hardware_gpu().is_some() {
        v.push(DeviceChoice::Wgpu);
    }
    v
}

/// Runs the DDM benchmark and prints one JSON line per measurement plus a table.
pub fn ddm(a: &DdmBenchArgs, quiet: bool) -> Result<()> {
    let devices = if a.devices.is_empty() {
        default_devices()
    } else {
        a.devices.clone()
    };
    let mut rows = Vec::new();
    for dc in devices {
        let sel = device::select(dc)?;
        for &n in &a.neurons {
            let cfg = DdmConfig::new()
                .with_sde(crate::sde::builtin::Kind::Lorenz.into())
                .with_neurons(n)
                .with_batch(a.batch)
                .with_iters(a.iters + 20)
                .with_init(crate::models::ddm::Init::Zero)
                .with_pool_size(20000)
                .with_pool_chains(1000)
                .with_burn_in(2.0)
                .with_normalize_drift(true)
                .with_grad(a.grad);
            let mut tr = DdmTrainer::new(&cfg, &sel.device)?;
            for s in 0..20 {
                tr.step(s)?;
            }
            sel.device
                .sync()
                .map_err(|e| anyhow::anyhow!("sync: {e:?}"))?;
            let t0 = Instant::now();
            for s in 20..20 + a.iters {
                tr.step(s)?;
            }
            sel.device
                .sync()
                .map_err(|e| anyhow::anyhow!("sync: {e:?}"))?;
            let secs = t0.elapsed().as_secs_f64();
            let its = a.iters as f64 / secs;
            // forward Z·Uᵀ and φ·V, backward φᵀ·G: 3 GEMMs of 2·B·N·d flops.
            let flops = 6.0 * a.batch as f64 * n as f64 * 3.0;
            let row = json!({"bench": "ddm-train", "device": sel.description, "n": n, "d": 3, "batch": a.batch,
                             "iters": a.iters, "iters_per_s": its, "gflops": its * flops / 1e9});
            println!("{row}");
            rows.push(row);
        }
        // Simulation of the full network, N = 500.
        let n = 500;
        let cfg = DdmConfig::new()
            .with_sde(crate::sde::builtin::Kind::Lorenz.into())
            .with_neurons(n)
            .with_init(crate::models::ddm::Init::Zero)
            .with_pool_size(1000)
            .with_burn_in(0.5);
        let tr = DdmTrainer::new(&cfg, &sel.device)?;
        let net = &tr.ddm.net;
        let sde = NetworkSde(net);
        let em = EulerMaruyama::new(1e-3, 1.0)?;
        let mut rng = Rng::new(1);
        let z0: Vec<f64> = (0..a.trajectories * 3)
            .map(|_| 0.3 * rng.normal())
            .collect();
        let mut x = net.embed(tensor2(&z0, a.trajectories, 3, &sel.device), None);
        for _ in 0..20 {
            x = em.step(&sde, x, None, &mut rng);
        }
        let _ = to_vec_f32(&x)?;
        let t0 = Instant::now();
        for _ in 0..a.sim_steps {
            x = em.step(&sde, x, None, &mut rng);
        }
        let _ = to_vec_f32(&x)?;
        let secs = t0.elapsed().as_secs_f64();
        let sps = a.sim_steps as f64 / secs;
        let k = a.trajectories as f64;
        let nn = n as f64;
        let flops_lowrank = 4.0 * k * nn * 3.0 + 2.0 * k * 3.0 * nn;
        let row = json!({"bench": "ddm-simulate", "device": sel.description, "n": n, "trajectories": a.trajectories,
                         "steps": a.sim_steps, "steps_per_s": sps, "traj_steps_per_s": sps * k,
                         "gflops_lowrank": sps * flops_lowrank / 1e9, "gflops_dense_equivalent": sps * 2.0 * nn * nn * k / 1e9});
        println!("{row}");
        rows.push(row);
    }
    if !quiet {
        log::info!(
            "\n{:<40} {:>6} {:>14} {:>10}",
            "benchmark / device",
            "N",
            "rate",
            "GFLOP/s"
        );
        for r in &rows {
            let rate = r
                .get("iters_per_s")
                .or(r.get("traj_steps_per_s"))
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            let unit = if r["bench"] == "ddm-train" {
                "it/s"
            } else {
                "traj-steps/s"
            };
            let gf = r
                .get("gflops")
                .or(r.get("gflops_lowrank"))
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            log::info!(
                "{:<40} {:>6} {:>9.1} {unit} {:>8.2}",
                format!(
                    "{} {}",
                    r["bench"].as_str().unwrap_or(""),
                    r["device"].as_str().unwrap_or("")
                ),
                r["n"],
                rate,
                gf
            );
        }
        if let Some(p) = a.peak_gflops {
            log::info!("machine f32 GEMM peak (given): {p} GFLOP/s");
        }
    }
    Ok(())
}

/// Arguments of `bench ops`.
#[derive(Args, Debug, Clone)]
pub struct OpsBenchArgs {
    /// Rows of the test matrices.
    #[arg(long, default_value_t = 1024)]
    pub rows: usize,
    /// Columns of the test matrices.
    #[arg(long, default_value_t = 784)]
    pub cols: usize,
    /// Repetitions.
    #[arg(long, default_value_t = 50)]
    pub reps: usize,
    /// Backends (default: the global `--device` when given, else the compiled CPU ones).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceChoice>,
}

/// Times single tensor operations (ms per call): where the time of the model loops goes.
pub fn ops(a: &OpsBenchArgs) -> Result<()> {
    use burn::tensor::Tensor;
    let devices = if a.devices.is_empty() {
        default_devices()
    } else {
        a.devices.clone()
    };
    let (r, c) = (a.rows, a.cols);
    for dc in devices {
        let sel = device::select(dc)?;
        let dev = &sel.device;
        let mut rng = Rng::new(3);
        let x = crate::transfer::tensor2_f32(rng.normal_vec(r * c), r, c, dev);
        let w = crate::transfer::tensor2_f32(rng.normal_vec(c * c), c, c, dev);
        let small = crate::transfer::tensor2_f32(rng.normal_vec(c * 3), c, 3, dev);
        let time = |name: &str, flops: f64, f: &mut dyn FnMut() -> Tensor<2>| -> Result<()> {
            let _ = to_vec_f32(&f())?;
            let t0 = Instant::now();
            let mut last = None;
            for _ in 0..a.reps {
                last = Some(f());
            }
            if let Some(l) = last {
                let _ = to_vec_f32(&l)?;
            }
            let ms = t0.elapsed().as_secs_f64() * 1e3 / a.reps as f64;
            let gf = if flops > 0.0 {
                format!("{:.1} GFLOP/s", flops / ms / 1e6)
            } else {
                String::new()
            };
            println!("{:<28} {:<10} {:>9.3} ms  {gf}", sel.description, name, ms);
            Ok(())
        };
        time("tanh", 0.0, &mut || x.clone().tanh())?;
        time("fast::tanh", 0.0, &mut || {
            crate::device::fast::tanh(x.clone())
        })?;
        time("exp", 0.0, &mut || x.clone().exp())?;
        time("readback+upload", 0.0, &mut || {
            let v = crate::transfer::download_owned(x.clone()).unwrap_or_default();
            crate::transfer::tensor2_f32(v, r, c, dev)
        })?;
        time("tanh+deriv", 0.0, &mut || {
            crate::device::fast::tanh_and_derivative(x.clone()).1
        })?;
        time("add", 0.0, &mut || x.clone() + x.clone())?;
        let row = x.clone().slice([0..1, 0..c]);
        time("add [1,N] bcast", 0.0, &mut || x.clone() + row.clone())?;
        time("mul", 0.0, &mut || x.clone() * x.clone())?;
        time("powi_scalar 2", 0.0, &mut || x.clone().powi_scalar(2))?;
        time("mul_scalar", 0.0, &mut || x.clone().mul_scalar(0.5))?;
        time("matmul NxN", 2.0 * (r * c * c) as f64, &mut || {
            x.clone().matmul(w.clone())
        })?;
        time("matmul NxNᵀ", 2.0 * (r * c * c) as f64, &mut || {
            x.clone().matmul(w.clone().transpose())
        })?;
        time("xᵀ·x outer", 2.0 * (r * c * c) as f64, &mut || {
            x.clone().transpose().matmul(x.clone())
        })?;
        time("matmul Nx3", 2.0 * (r * c * 3) as f64, &mut || {
            x.clone().matmul(small.clone())
        })?;
        let mut rr = Rng::new(5);
        time("normal(host)", 0.0, &mut || {
            crate::transfer::tensor2_f32(rr.normal_vec(r * c), r, c, dev)
        })?;
        time("normal(fast)", 0.0, &mut || {
            let mut v = vec![0f32; r * c];
            rr.fill_normal_f32(&mut v);
            crate::transfer::tensor2_f32(v, r, c, dev)
        })?;
        time("random(burn)", 0.0, &mut || {
            Tensor::random([r, c], burn::tensor::Distribution::Normal(0.0, 1.0), dev)
        })?;
    }
    Ok(())
}

/// Arguments of `bench fep`.
#[derive(Args, Debug, Clone)]
pub struct FepBenchArgs {
    /// Network sizes for the single-network measurement.
    #[arg(long, value_delimiter = ',', default_value = "64,1024,4096")]
    pub neurons: Vec<usize>,
    /// Networks of the batched grid (N = 64), as the Sim-2 grid.
    #[arg(long, default_value_t = 380)]
    pub grid: usize,
    /// Engines to time (`tensor`, `host`; default: both on CPU devices, tensor elsewhere).
    #[arg(long, value_delimiter = ',')]
    pub engines: Vec<crate::models::fep::Engine>,
    /// Backends (default: the global `--device` when given, else the compiled CPU ones, and
    /// wgpu with a hardware GPU).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceChoice>,
}

/// FEP training throughput: network-steps/s (one stochastic update + learning step of one network).
pub fn fep(a: &FepBenchArgs) -> Result<()> {
    use crate::models::fep::{Engine, FepConfig, FepTrainer};
    let devices = if a.devices.is_empty() {
        default_devices()
    } else {
        a.devices.clone()
    };
    for dc in devices {
        let sel = device::select(dc)?;
        let mut cases: Vec<(usize, usize)> = a.neurons.iter().map(|&n| (n, 1)).collect();
        cases.push((64, a.grid));
        // Both engines on a CPU device (the host engine is CPU-only).
        let engines: &[Engine] = if sel.is_cpu() {
            &[Engine::Tensor, Engine::Host]
        } else {
            &[Engine::Tensor]
        };
        for (n, g) in cases
            .iter()
            .flat_map(|&c| engines.iter().map(move |&e| (c, e)))
        {
            let ((n, g), engine) = (n, g);
            if !a.engines.is_empty() && !a.engines.contains(&engine) {
                continue;
            }
            let mut rng = Rng::new(1);
            let pats: Vec<f64> = (0..10 * n).map(|_| rng.normal()).collect();
            let cfg = FepConfig::new()
                .with_networks(g)
                .with_steps_per_epoch(10)
                .with_engine(engine);
            let mut t = FepTrainer::new(&cfg, pats, n, &sel.device)?;
            for e in 0..2 {
                t.step(e)?;
            }
            // Aim at about 2 seconds per case.
            let per_epoch = {
                let t0 = Instant::now();
                t.step(2)?;
                t0.elapsed().as_secs_f64().max(1e-5)
            };
            let epochs = ((2.0 / per_epoch) as u64).clamp(3, 100_000);
            let t0 = Instant::now();
            for e in 0..epochs {
                t.step(3 + e)?;
            }
            let secs = t0.elapsed().as_secs_f64();
            let steps = epochs as f64 * 10.0;
            // GEMV + rank-1 update: about 4 N² flops per network-step.
            let flops = 4.0 * (n * n) as f64 * g as f64 * steps;
            let row = json!({"bench": "fep-train", "device": sel.description, "engine": engine.to_string(), "n": n, "networks": g, "epochs": epochs,
                             "steps_per_s": steps / secs, "network_steps_per_s": steps * g as f64 / secs, "gflops": flops / secs / 1e9});
            println!("{row}");
        }
    }
    Ok(())
}

/// Arguments of `bench nlm`.
#[derive(Args, Debug, Clone)]
pub struct NlmBenchArgs {
    /// Neurons N (784 = 28×28 MNIST).
    #[arg(long, default_value_t = 784)]
    pub neurons: usize,
    /// Persistent chains M (= data batch B, as the PyTorch reference).
    #[arg(long, default_value_t = 1000)]
    pub chains: usize,
    /// Langevin steps per update k.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Timed updates per backend.
    #[arg(long, default_value_t = 20)]
    pub updates: u64,
    /// Timed sampling steps per backend.
    #[arg(long, default_value_t = 100)]
    pub sample_steps: usize,
    /// Backends (default: the global `--device` when given, else the compiled CPU ones, and
    /// wgpu with a hardware GPU).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceChoice>,
    /// Also time the stages of one Langevin step (ms per call; meaningful on CPU backends,
    /// which execute eagerly).
    #[arg(long)]
    pub profile: bool,
}

/// Per-stage timing of the Langevin step (CPU backends run each op eagerly).
fn nlm_profile(
    nlm: &crate::models::nlm::Nlm,
    x: burn::tensor::Tensor<2>,
    desc: &str,
) -> Result<()> {
    use crate::device::fast;
    let reps = 20;
    let mut rng = Rng::new(9);
    let [m, n] = x.dims();
    let stage = |name: &str, f: &mut dyn FnMut() -> burn::tensor::Tensor<2>| -> Result<()> {
        let _ = to_vec_f32(&f().slice([0..1, 0..1]))?;
        let t0 = Instant::now();
        for _ in 0..reps {
            let y = f();
            let _ = to_vec_f32(&y.slice([0..1, 0..1]))?;
        }
        println!(
            "{}",
            json!({"bench": "nlm-profile", "device": desc, "stage": name,
                   "ms": t0.elapsed().as_secs_f64() * 1e3 / reps as f64})
        );
        Ok(())
    };
    let (phi, dphi) = fast::tanh_and_derivative(x.clone());
    let jt = nlm.j.val().transpose();
    let e = phi.clone().matmul(jt.clone()) + nlm.b.val() - x.clone();
    stage("tanh+derivative", &mut || {
        fast::tanh_and_derivative(x.clone()).0
    })?;
    stage("phi·Jᵀ", &mut || phi.clone().matmul(jt.clone()))?;
    stage("phi·Jᵀ + b − x", &mut || {
        phi.clone().matmul(jt.clone()) + nlm.b.val() - x.clone()
    })?;
    stage("e·J", &mut || e.clone().matmul(nlm.j.val()))?;
    stage("e − dphi⊙(eJ)", &mut || {
        e.clone() - dphi.clone() * e.clone().matmul(nlm.j.val())
    })?;
    stage("force (total)", &mut || nlm.force(x.clone()))?;
    stage("noise [M,N] (host+upload)", &mut || {
        let mut v = vec![0f32; m * n];
        rng.fill_normal_f32(&mut v);
        crate::transfer::tensor2_f32(v, m, n, &x.device())
    })?;
    let em = EulerMaruyama::new(0.01, 1.0)?;
    let mut r2 = Rng::new(3);
    stage("EM step (total)", &mut || {
        em.step(nlm, x.clone(), None, &mut r2)
    })?;
    // The fused CPU kernel's stages, on host buffers.
    if let Some(mut kernel) = nlm.host_kernel(true)? {
        let xs = to_vec_f32(&x)?;
        let mut f = vec![0f32; m * n];
        let mut w = vec![0f32; m * n];
        let threads = crate::device::cpu_threads();
        let host = |name: &str, g: &mut dyn FnMut()| {
            g();
            let t0 = Instant::now();
            for _ in 0..reps {
                g();
            }
            println!(
                "{}",
                json!({"bench": "nlm-profile", "device": desc, "engine": "fused", "stage": name,
                       "ms": t0.elapsed().as_secs_f64() * 1e3 / reps as f64})
            );
        };
        host("fused drift (tanh pass, 2 GEMMs, force pass)", &mut || {
            kernel.drift(&xs, m, &mut f)
        });
        host("noise [M,N] (host)", &mut || rng.fill_normal_f32(&mut w));
        let mut xc = xs.clone();
        let em_c = crate::sde::solver::EmCoefs {
            dt: 0.01,
            s: 0.1,
            g: std::f32::consts::SQRT_2,
        };
        host("EM update pass", &mut || {
            crate::sde::solver::em_update(&mut xc, &f, &w, &em_c, n, threads)
        });
        let em1 = EulerMaruyama::new(0.01, 1.0)?;
        host("EM step (fused, total)", &mut || {
            let _ = em1.advance(nlm, x.clone(), 1, &mut r2);
        });
    }
    Ok(())
}

/// Times the stages of one training update (ms per call, best of 10): the k Langevin steps,
/// tanh of the samples, the contrastive gradients (four GEMMs and their elementwise work) and
/// the Adam steps of J and b.
fn nlm_update_profile(t: &mut crate::models::nlm::NlmTrainer, desc: &str) -> Result<()> {
    use crate::device::fast;
    use crate::models::nlm::{contrastive_grads, offdiag_mask};
    use crate::optim::AdamState;
    let [m, n] = t.chains.dims();
    let k = t.cfg.steps_per_update;
    let dev = t.chains.device();
    let em = EulerMaruyama::new(t.cfg.dt, 1.0)?;
    let mut rng = Rng::new(11);
    let xd = t.chains.clone();
    let phid = fast::tanh(xd.clone());
    let offdiag = offdiag_mask(n, &dev);
    let (opt_j, opt_b) = (t.cfg.adam(), t.cfg.adam_bias());
    let mut adam = AdamState::new(&[("J", &t.nlm.j), ("b", &t.nlm.b)]);
    let mut xm = t.chains.clone();
    let time = |name: &str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        f()?;
        let mut best = f64::INFINITY;
        for _ in 0..10 {
            let t0 = Instant::now();
            f()?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "{}",
            json!({"bench": "nlm-update-profile", "device": desc, "chains": m, "n": n,
                   "stage": name, "ms": best * 1e3})
        );
        Ok(())
    };
    time(&format!("{k} Langevin steps"), &mut || {
        xm = em.advance(&t.nlm, xm.clone(), k, &mut rng)?;
        let _ = to_vec_f32(&xm.clone().slice([0..1, 0..1]))?;
        Ok(())
    })?;
    time("tanh of the samples", &mut || {
        let _ = to_vec_f32(&fast::tanh(xm.clone()).slice([0..1, 0..1]))?;
        Ok(())
    })?;
    let phim = fast::tanh(xm.clone());
    let grads = |nlm: &crate::models::nlm::Nlm| {
        contrastive_grads(
            nlm,
            xd.clone(),
            phid.clone(),
            xm.clone(),
            phim.clone(),
            &offdiag,
        )
    };
    time("contrastive gradients", &mut || {
        let g = grads(&t.nlm);
        let _ = to_vec_f32(&g.grad_j.slice([0..1, 0..1]))?;
        let _ = to_vec_f32(&g.grad_b)?;
        Ok(())
    })?;
    let g = grads(&t.nlm);
    time("Adam (J and b)", &mut || {
        let grads = vec![
            (t.nlm.j.id, g.grad_j.clone(), &opt_j),
            (t.nlm.b.id, g.grad_b.clone(), &opt_b),
        ];
        let nlm = adam.step(t.nlm.clone(), grads, 1e-6)?;
        let j = nlm.j.val() * offdiag.clone();
        let _ = to_vec_f32(&j.slice([0..1, 0..1]))?;
        let _ = to_vec_f32(&nlm.b)?;
        Ok(())
    })?;
    time("one whole update", &mut || t.step(0).map(|_| ()))?;
    Ok(())
}

/// NLM throughput: Langevin chain-steps/s (sampling) and training updates/s, with GFLOP/s of
/// the GEMMs counted as the PyTorch reference counts them (2 N×N×M GEMMs per Langevin step,
/// 2 outer-product GEMMs per update; `gflops_all_gemms` adds the two data/model field GEMMs).
pub fn nlm(a: &NlmBenchArgs) -> Result<()> {
    use crate::models::nlm::{NlmConfig, NlmTrainer};
    let devices = if a.devices.is_empty() {
        default_devices()
    } else {
        a.devices.clone()
    };
    let (n, m, k) = (a.neurons, a.chains, a.k);
    let (nf, mf, kf) = (n as f64, m as f64, k as f64);
    for dc in devices {
        let sel = device::select(dc)?;
        let dev = &sel.device;
        // Training: synthetic pre-activations in [-2, 2], as the reference.
        let mut rng = Rng::new(1);
        let data: Vec<f32> = (0..m * n).map(|_| rng.uniform(-2.0, 2.0) as f32).collect();
        let cfg = NlmConfig::new()
            .with_chains(m)
            .with_batch(m)
            .with_n_data(m)
            .with_steps_per_update(k);
        // The machine's f32 GEMM peak on this backend (2048², best of 5).
        let peak = {
            let mut r2 = Rng::new(2);
            let s = 2048;
            let x = crate::transfer::tensor2_f32(r2.normal_vec(s * s), s, s, dev);
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t0 = Instant::now();
                let y = x.clone().matmul(x.clone());
                let _ = to_vec_f32(&y.slice([0..1, 0..1]))?;
                best = best.min(t0.elapsed().as_secs_f64());
            }
            2.0 * (s * s * s) as f64 / best / 1e9
        };
        println!(
            "{}",
            json!({"bench": "gemm-peak", "device": sel.description, "size": 2048, "gflops": peak})
        );
        let mut t = NlmTrainer::new(&cfg, data, n, dev)?;
        for s in 0..2 {
            t.step(s)?;
        }
        // Steps leave their scalars on the device (no read-back): time to a device sync.
        dev.sync().map_err(|e| anyhow::anyhow!("sync: {e:?}"))?;
        let t0 = Instant::now();
        for s in 0..a.updates {
            t.step(2 + s)?;
        }
        dev.sync().map_err(|e| anyhow::anyhow!("sync: {e:?}"))?;
        let secs = t0.elapsed().as_secs_f64();
        let ups = a.updates as f64 / secs;
        let fl_brief = kf * 4.0 * nf * nf * mf + 2.0 * nf * nf * (2.0 * mf);
        let fl_all = fl_brief + 2.0 * nf * nf * (2.0 * mf);
        println!(
            "{}",
            json!({"bench": "nlm-step", "device": sel.description, "n": n, "chains": m, "batch": m, "k": k,
                   "updates": a.updates, "updates_per_s": ups, "chain_steps_per_s": ups * kf * mf,
                   "gflops_brief": ups * fl_brief / 1e9, "gflops_all_gemms": ups * fl_all / 1e9,
                   "peak_fraction": ups * fl_all / 1e9 / peak})
        );
        if a.profile {
            nlm_profile(&t.nlm, t.chains.clone(), &sel.description)?;
            nlm_update_profile(&mut t, &sel.description)?;
        }
        // Sampling only: the solver's fused CPU kernel (where it applies) and tensor ops.
        let has_kernel = t.nlm.host_kernel(true)?.is_some();
        for fused in [true, false] {
            if fused && !has_kernel {
                continue;
            }
            let mut em = EulerMaruyama::new(0.01, 1.0)?;
            if !fused {
                em = em.tensor_ops();
            }
            let x = em.advance(&t.nlm, t.chains.clone(), 3, &mut rng)?;
            let _ = to_vec_f32(&x.clone().slice([0..1, 0..1]))?;
            let t0 = Instant::now();
            let x = em.advance(&t.nlm, x, a.sample_steps, &mut rng)?;
            let _ = to_vec_f32(&x.slice([0..1, 0..1]))?;
            let secs = t0.elapsed().as_secs_f64();
            let sps = a.sample_steps as f64 / secs;
            let engine = if fused { "fused" } else { "tensor" };
            println!(
                "{}",
                json!({"bench": "nlm-sample", "device": sel.description, "engine": engine, "n": n, "chains": m,
                       "steps": a.sample_steps, "steps_per_s": sps, "chain_steps_per_s": sps * mf,
                       "gflops": sps * 4.0 * nf * nf * mf / 1e9, "peak_fraction": sps * 4.0 * nf * nf * mf / 1e9 / peak})
            );
        }
    }
    Ok(())
}
