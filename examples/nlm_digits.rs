//! A neural Langevin machine trained on the bundled digits through the library API, then
//! sampled from noise.
//!
//! 1000 contrastive updates on 500 images of the digits 1, 3 and 6 pooled to 14×14 (196
//! neurons), checkpointed in `checkpoints/examples/nlm_digits`; Ctrl-C stops it with a
//! checkpoint and the next run of the example resumes it. Then 64 fresh chains run 2000
//! Langevin steps from N(0, 1): the samples go to `checkpoints/examples/nlm_digits.png`, the
//! report (mean pixel against the data's, class shares) to stdout.
//!
//! Run: `cargo run --release --example nlm_digits`

use anyhow::Result;
use attractor::api::nlm::{GenerateOptions, generate};
use attractor::api::{Ctx, ResumeOptions, Run, RunPlace, train};
use attractor::models::nlm::NlmConfig;

fn main() -> Result<()> {
    let ctx = Ctx::cpu()?;
    ctrlc::set_handler(ctx.control.stop.handler())?;
    let dir = "checkpoints/examples/nlm_digits";
    match Run::open(dir) {
        Ok(run) => println!("{:?}", run.resume(ResumeOptions::default(), &ctx)?),
        Err(_) => {
            let cfg = NlmConfig::new().with_pool(2).with_updates(1000);
            let cfg = cfg.with_n_data(500).with_chains(64).with_batch(64);
            println!("{:?}", train(cfg, &RunPlace::at(dir), &ctx)?);
        }
    }
    let mut o = GenerateOptions::default();
    (o.chains, o.steps) = (64, 2000);
    let g = generate(dir.as_ref(), &o, &ctx)?;
    g.grid(8).save("checkpoints/examples/nlm_digits.png")?;
    println!("{}", serde_json::to_string(&g)?);
    Ok(())
}
