//! Writes the seed corpus `fuzz/seeds/<target>/` with the main crate's own writers where it has
//! them (`.npy`, checkpoints). Run from `fuzz/`: `cargo run --example make_seeds`.
//! The seeds are committed; rerunning this rewrites the same files.

use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;

use attractor_parsers::checkpoint::{Checkpoint, NamedArray};
use attractor_parsers::npy;
use flate2::Compression;
use flate2::write::GzEncoder;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn png(image: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn with_sel(sel: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![sel];
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// An `.npy` file with a hand-written header (dtypes and versions our writer does not produce).
fn npy_handmade(major: u8, dict: &str, payload: &[u8]) -> Vec<u8> {
    let pre = if major == 1 { 10 } else { 12 };
    let total = (pre + dict.len() + 1).div_ceil(64) * 64;
    let hlen = total - pre;
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(hlen as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(hlen as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap();
        assert!(bytes.len() < 4096, "seed {target}/{name} is too large");
        fs::write(dir.join(name), bytes).unwrap();
    };

    // IDX: 3 images of 4×4 and their labels.
    let pixels: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37)).collect();
    let images = idx(0x803, &[3, 4, 4], &pixels);
    let labels = idx(0x801, &[3], &[1, 3, 6]);
    write("idx", "images-raw", &with_sel(0, &[&images]));
    write("idx", "images-gz", &with_sel(0, &[&gz(&images)]));
    write("idx", "labels-raw", &with_sel(1, &[&labels]));
    write("idx", "labels-gz", &with_sel(1, &[&gz(&labels)]));
    write("idx", "dir-images", &with_sel(2, &[&images]));
    write("idx", "dir-images-gzname", &with_sel(10, &[&gz(&images)]));
    write("idx", "dir-both", &with_sel(3, &[&images, &labels]));
    write("idx", "dir-both-test", &with_sel(7, &[&images, &labels]));

    // PNG: grey, RGB, RGBA, 16-bit; folders of two same-size and two different-size images.
    let grey = png(DynamicImage::ImageLuma8(ImageBuffer::from_fn(
        4,
        4,
        |x, y| Luma([(x * 60 + y * 3) as u8]),
    )));
    let rgb = png(DynamicImage::ImageRgb8(ImageBuffer::from_fn(
        4,
        4,
        |x, y| Rgb([(x * 60) as u8, (y * 60) as u8, 128]),
    )));
    let rgba = png(DynamicImage::ImageRgba8(ImageBuffer::from_fn(
        3,
        2,
        |x, y| Rgba([(x * 80) as u8, (y * 100) as u8, 7, 200]),
    )));
    let grey16 = png(DynamicImage::ImageLuma16(ImageBuffer::from_fn(
        2,
        2,
        |x, y| Luma([(x * 30000 + y * 1000) as u16]),
    )));
    write("png", "grey8", &with_sel(0, &[&grey]));
    write("png", "rgb8", &with_sel(0, &[&rgb]));
    write("png", "rgba8", &with_sel(0, &[&rgba]));
    write("png", "grey16", &with_sel(0, &[&grey16]));
    write("png", "two-same-size", &with_sel(0, &[&grey, &rgb]));
    write("png", "two-sizes", &with_sel(0, &[&grey, &rgba]));
    write(
        "png",
        "three-one-not-png",
        &with_sel(1, &[&grey, &rgb, &grey]),
    );

    // .npy: our writer (f32 and f64, 2-D and 1-D), integer dtypes and a v2 header by hand.
    let d32: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
    write("npy", "f32-3x4", &npy::npy_bytes_f32(&[3, 4], &d32));
    let d64: Vec<f64> = (0..6).map(|i| f64::from(i) * 1.5 - 2.0).collect();
    write("npy", "f64-2x3", &npy::npy_bytes_f64(&[2, 3], &d64));
    write(
        "npy",
        "f64-1d",
        &npy::npy_bytes_f64(&[4], &[1.0, -2.0, 3.5, 0.0]),
    );
    write(
        "npy",
        "f32-3d",
        &npy::npy_bytes_f32(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]),
    );
    let ints: Vec<u8> = [-1i32, 7, 100_000, 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write(
        "npy",
        "i4-2x2",
        &npy_handmade(
            1,
            "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }",
            &ints,
        ),
    );
    write(
        "npy",
        "u1-v2",
        &npy_handmade(
            2,
            "{\"shape\": (1,4), \"fortran_order\": False, \"descr\": \"|u1\"}",
            &[0, 1, 128, 255],
        ),
    );

    // CSV / text patterns.
    write("csv", "comma", b"1,0,1,0\n0,1,0,1\n0.5,-1,2e-3,4\n");
    write(
        "csv",
        "whitespace-comments",
        b"# two patterns\n1 0 1  0\n\n  -1.5\t2 3 4\n# end\n",
    );
    write(
        "csv",
        "bom-crlf",
        "\u{feff}1, 2, 3\r\n4, 5, 6\r\n".as_bytes(),
    );

    // SDE TOML files: the examples of README.md and of the module documentation, and variants.
    write(
        "sde_toml",
        "readme-duffing.toml",
        br#"name = "duffing"
dim = 2                      # z1..zd
inputs = 0                   # optional: u1..up
[params]                     # overridable with --param alpha=0.8
alpha = 1.0
[drift]
z1 = "z2"
z2 = "alpha*z1 - z1^3 - 0.5*z2"
[diffusion]
diagonal = [0.3, 0.3]
[box]                        # optional sampling box
z1 = [-2.5, 2.5]
z2 = [-2.5, 2.5]
[sim]
dt = 0.01
"#,
    );
    write(
        "sde_toml",
        "doc-matrix-inputs.toml",
        br#"name = "my-duffing"
dim = 2
inputs = 1
noise_dim = 2

[params]
alpha = 1.0
beta = 0.5
sigma = 0.3

[drift]
z1 = "z2"
z2 = "alpha*z1 - beta*z1^3 - 0.2*z2 + u1"

[diffusion]
matrix = [["sigma", 0.0], [0.0, "sigma"]]
"#,
    );
    write(
        "sde_toml",
        "entries-nonsquare.toml",
        br#"dim = 2
noise_dim = 3
[params]
s = 0.2
g = 1.5
[drift]
z1 = "-z1 + g*tanh(z2) + min(z1, z2, 1)"
z2 = "-z2 + sin(pi*z1) - atan2(z2, 1 + z1^2)"
[diffusion]
entries = [["s*(1+z1^2)", "0", "s"], ["0", "sqrt(abs(z2)+1)*s", "exp(-z1^2)"]]
"#,
    );
    write(
        "sde_toml",
        "one-d.toml",
        b"dim = 1\n[drift]\nz1 = \"-4*z1*(z1^2 - 1)\"\n[diffusion]\ndiagonal = [\"0.5*sigmoid(z1)\"]\n",
    );

    // Single expressions (selector byte first).
    for (i, e) in [
        "alpha*z1 - beta*z1^3 - 0.2*z2 + u1",
        "-z1^2 + pow(z2, 3) / (1 + exp(-z3))",
        "max(z1, z2, z3, u2) * sign(sigma) + ln(2) - cosh(z1)",
        "(z1^2)^0.5 + sqrt(abs(z2)) * atan(u1) - tan(pi/4)",
        "sigma*(1+z1^2)",
    ]
    .iter()
    .enumerate()
    {
        write(
            "sde_expr",
            &format!("expr{i}"),
            &with_sel(0, &[e.as_bytes()]),
        );
    }
    write("sde_expr", "override", &with_sel(0, &[b"beta=0.25"]));
    write(
        "sde_expr",
        "constant-only",
        &with_sel(3, &[b"2*alpha - e^2"]),
    );

    // Config JSON (stand-in struct), a run's config.json, and --set strings after NULs.
    let cfg = br#"{"lr": 0.01, "iters": 500, "data": "digits", "symmetric": true, "digits": [0, 2], "until": 9, "sampler": {"steps": 3}}"#;
    write("config", "file", cfg);
    write(
        "config",
        "run-config",
        br#"{"meta": {"model": "nlm", "version": 1, "seed": 7}, "config": {"lr": 0.5, "sampler": {"noise": 0.1}}}"#,
    );
    write(
        "config",
        "file-and-sets",
        b"{\"iters\": 10}\0lr=2.5\0sampler.steps=7\0data=mnist\0digits=[1,2,3]\0until=null",
    );
    write(
        "config",
        "sets-only",
        b"{}\0symmetric=true\0sampler.noise=1e-3",
    );

    // Checkpoints written by the main crate's writer.
    let ck = Checkpoint {
        kind: "nlm".into(),
        step: 42,
        arrays: vec![
            NamedArray {
                name: "J".into(),
                shape: vec![2, 3],
                data: vec![1.0, -2.0, 3.5, 0.0, f32::MIN_POSITIVE, 6.0],
            },
            NamedArray {
                name: "adam.m.J".into(),
                shape: vec![3],
                data: vec![0.5, 0.25, -0.125],
            },
            NamedArray {
                name: "empty".into(),
                shape: vec![0, 4],
                data: vec![],
            },
        ],
        extra: serde_json::json!({"rng": [1, 2, 3], "t": 0.5, "note": "seed"}),
    };
    let bytes = ck.to_bytes().unwrap();
    write("checkpoint", "valid", &with_sel(0, &[&bytes]));
    // Selector 1: the target appends the checksum itself.
    write(
        "checkpoint",
        "valid-fixup",
        &with_sel(1, &[&bytes[..bytes.len() - 8]]),
    );
    let small = Checkpoint {
        kind: "ddm".into(),
        step: 0,
        arrays: vec![],
        extra: serde_json::Value::Null,
    };
    let bytes = small.to_bytes().unwrap();
    write(
        "checkpoint",
        "empty-fixup",
        &with_sel(1, &[&bytes[..bytes.len() - 8]]),
    );
    println!("seeds written under {}", root.display());
}
