//! A neural Langevin machine trained on the bundled digits, then sampled from noise.
//!
//! 1000 contrastive updates on 500 images of the digits 1, 3 and 6 pooled to 14×14 (196 neurons),
//! then 64 fresh chains run 2000 Langevin steps from N(0, 1); the samples are written to
//! `checkpoints/examples/nlm_digits.png` and their mean pixel compared with the data's.
//!
//! Run: `cargo run --release --example nlm_digits`

use anyhow::Result;
use attractor::analysis::nlm::{generate, mean_image, prepare};
use attractor::device::{DeviceChoice, select};
use attractor::models::nlm::{NlmConfig, NlmTrainer, streams};
use attractor::plot::{image_grid, save_rgb_png};
use attractor::rng::Rng;
use attractor::train::Trainable;

fn main() -> Result<()> {
    let device = select(DeviceChoice::Flex)?.device;
    let cfg = NlmConfig::new()
        .with_pool(2)
        .with_n_data(500)
        .with_chains(64)
        .with_batch(64)
        .with_updates(1000)
        .with_seed(1);
    let data = prepare(&cfg)?;
    let (side, dim) = (data.train.cols, data.train.dim());
    let mut trainer = NlmTrainer::new(&cfg, data.x_train, dim, &device)?;
    for step in 0..cfg.updates {
        let out = trainer.step(step)?;
        if (step + 1) % 250 == 0 {
            println!("update {:3}: {:?}", step + 1, out.read()?);
        }
    }

    let mut rng = Rng::derived(cfg.seed, streams::GENERATE);
    let (frames, _) = generate(&trainer.nlm, 64, 2000, cfg.dt, &[], &mut rng, &device)?;
    let (_, samples) = frames.last().expect("generate returns the final frame");
    let images: Vec<Vec<f32>> = samples.chunks(dim).map(<[f32]>::to_vec).collect();
    let out = std::path::Path::new("checkpoints/examples");
    std::fs::create_dir_all(out)?;
    let png = out.join("nlm_digits.png");
    save_rgb_png(&image_grid(&images, side, side, 8, -1.0, 1.0, 4), &png)?;

    let data_pixels = attractor::data::images::signed(&data.train.pixels);
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    let (m_data, m_gen) = (mean(&data_pixels), mean(samples));
    let inverted =
        attractor::analysis::nlm::inverted_frac(samples, &mean_image(&data_pixels, dim), dim);
    println!(
        "wrote {}: mean pixel {m_gen:.3} (data {m_data:.3}), {:.0} % inverted",
        png.display(),
        100.0 * inverted
    );
    Ok(())
}
