//! Image data sets for the NLM: the bundled MNIST, a user's IDX folder, or a folder of PNGs.
//!
//! Every source becomes an [`ImageSet`]: `count` images of `rows × cols` pixels in [0, 1],
//! with labels where the source has them: IDX label files, or for PNGs one sub-folder per class
//! (the class is the sub-folder's name, classes numbered in sorted name order). [`load_source`]
//! and [`filter_labels`] keep the files' order (IDX: training split then test split; PNGs: file
//! name order, class after class); the NLM's data preparation shuffles PNG folders before it
//! splits off the held-out images.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::idx::{self, Split};
use super::patterns::load_patterns;

/// The built-in image sets of NLM runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BuiltinImages {
    /// The bundled MNIST (train and test splits).
    Mnist,
}

impl crate::config::Builtins for BuiltinImages {
    const WHAT: &'static str = "image set";
}

/// The `data` of an NLM configuration: a built-in image set or a folder.
pub type ImageSource = crate::config::Source<BuiltinImages>;

/// Images of one size with optional labels.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// Pixels in [0, 1], image after image, row-major.
    pub pixels: Vec<f32>,
    /// One label per image, if known.
    pub labels: Option<Vec<u8>>,
    /// Where the images came from.
    pub source: String,
    /// Conversions worth telling the user about (colour → grey …).
    pub warnings: Vec<String>,
    /// The class names of a PNG folder with one sub-folder per class (label `c` is
    /// `class_names[c]`); `None` for IDX data (whose labels are their own names).
    pub class_names: Option<Vec<String>>,
}

impl ImageSet {
    /// Whether the images came from a folder of PNG files (flat or one sub-folder per class).
    pub fn is_png_folder(&self) -> bool {
        self.source.starts_with("png:")
    }

    /// The display name of label `c`: the sub-folder name of a class-folder set, else the
    /// number.
    pub fn class_name(&self, c: u8) -> String {
        match &self.class_names {
            Some(names) => names
                .get(c as usize)
                .cloned()
                .unwrap_or_else(|| c.to_string()),
            None => c.to_string(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.dim().max(1)
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    /// Image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.dim();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(idx.len() * self.dim());
        for &i in idx {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            pixels,
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
            warnings: Vec::new(),
            ..self.clone()
        }
    }

    /// Average-pools every image by `factor` (1: unchanged); the size must divide.
    pub fn pooled(&self, factor: usize) -> Result<ImageSet> {
        if factor == 0 {
            bail!("`pool` must be >= 1");
        }
        if factor == 1 {
            return Ok(self.clone());
        }
        if !self.rows.is_multiple_of(factor) || !self.cols.is_multiple_of(factor) {
            bail!(
                "`pool` = {factor} does not divide the image size {}×{}",
                self.rows,
                self.cols
            );
        }
        let (r2, c2) = (self.rows / factor, self.cols / factor);
        let area = (factor * factor) as f32;
        let mut pixels = Vec::with_capacity(self.len() * r2 * c2);
        for i in 0..self.len() {
            let img = self.image(i);
            for r in 0..r2 {
                for c in 0..c2 {
                    let mut s = 0f32;
                    for dr in 0..factor {
                        for dc in 0..factor {
                            s += img[(r * factor + dr) * self.cols + c * factor + dc];
                        }
                    }
                    pixels.push(s / area);
                }
            }
        }
        Ok(ImageSet {
            rows: r2,
            cols: c2,
            pixels,
            ..self.clone()
        })
    }

    /// Thresholds every pixel with [`binarize_pixels`].
    pub fn binarized(mut self) -> ImageSet {
        binarize_pixels(&mut self.pixels);
        self
    }

    /// Concatenates two sets of the same image size.
    pub fn concat(mut self, other: &ImageSet) -> Result<ImageSet> {
        if (self.rows, self.cols) != (other.rows, other.cols) {
            bail!(
                "cannot join images of {}×{} and {}×{}",
                self.rows,
                self.cols,
                other.rows,
                other.cols
            );
        }
        self.pixels.extend_from_slice(&other.pixels);
        self.labels = match (self.labels, &other.labels) {
            (Some(mut a), Some(b)) => {
                a.extend_from_slice(b);
                Some(a)
            }
            _ => None,
        };
        Ok(self)
    }
}

/// Thresholds pixels in [0, 1] at 0.5, in place: 1 above, 0 at or below (idempotent).
pub fn binarize_pixels(pixels: &mut [f32]) {
    for p in pixels {
        *p = if *p > 0.5 { 1.0 } else { 0.0 };
    }
}

/// Most pixels (all images of a source together) turned into f32 for training: 2^28, i.e. 1 GiB
/// (MNIST holds 5.5·10⁷). A small gzip file can hold up to the IDX reader's 2 GiB per file;
/// converting that to f32 would quadruple it.
pub const MAX_POOL_PIXELS: usize = 1 << 28;

fn check_pool_size(pixels: usize, dir: &Path) -> Result<()> {
    if pixels > MAX_POOL_PIXELS {
        bail!(
            "{}: the images hold {pixels} pixels, more than the {MAX_POOL_PIXELS} this loader \
             accepts (1 GiB as f32); use a subset of the data",
            dir.display()
        );
    }
    Ok(())
}

fn from_idx(ds: &idx::Dataset, source: String) -> ImageSet {
    ImageSet {
        rows: ds.images.rows,
        cols: ds.images.cols,
        pixels: ds.images.pixels.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: ds.labels.clone(),
        source,
        warnings: Vec::new(),
        class_names: None,
    }
}

/// Where the bundled MNIST lives (working directory first, then the source tree).
pub fn bundled_mnist_dir() -> Result<PathBuf> {
    let local = Path::new("data/mnist");
    if idx::find_idx(local, Split::Train.images_stem()).is_some() {
        return Ok(local.to_path_buf());
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    if idx::find_idx(&built, Split::Train.images_stem()).is_some() {
        return Ok(built);
    }
    bail!(
        "bundled MNIST not found (looked for data/mnist/train-images-idx3-ubyte.gz here and in {})",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Loads a source: `mnist` (bundled), a folder in IDX layout (`train-images-idx3-ubyte[.gz]`,
/// optional labels and `t10k-*` test files), or a folder of same-size PNG images.
///
/// Returns the pool in the paper's order (train, then test when present), and the number of
/// images that came from the training split.
pub fn load_source(source: &str) -> Result<(ImageSet, usize)> {
    let dir = if source == "mnist" {
        bundled_mnist_dir()?
    } else {
        PathBuf::from(source)
    };
    if !dir.exists() {
        bail!(
            "data source {} does not exist (give `mnist`, an IDX folder like MNIST's, or a \
             folder of same-size PNGs)",
            dir.display()
        );
    }
    if !dir.is_dir() {
        bail!(
            "data source {} is not a folder (expected an IDX folder or a folder of PNG images)",
            dir.display()
        );
    }
    if idx::find_idx(&dir, Split::Train.images_stem()).is_some() {
        let train = idx::load_mnist_dir(&dir, Split::Train)
            .with_context(|| format!("cannot load the IDX data in {}", dir.display()))?;
        let n_train = train.images.count;
        check_pool_size(train.images.pixels.len(), &dir)?;
        let mut set = from_idx(&train, format!("idx:{}", dir.display()));
        if idx::find_idx(&dir, Split::Test.images_stem()).is_some() {
            let test = idx::load_mnist_dir(&dir, Split::Test)
                .with_context(|| format!("cannot load the IDX test data in {}", dir.display()))?;
            check_pool_size(train.images.pixels.len() + test.images.pixels.len(), &dir)?;
            set = set.concat(&from_idx(&test, String::new()))?;
        }
        return Ok((set, n_train));
    }
    if let Some(classes) = class_folders(&dir)? {
        let set = load_class_folders(&dir, &classes)?;
        let count = set.len();
        return Ok((set, count));
    }
    let p = load_patterns(&dir).with_context(|| {
        format!(
            "{} holds neither IDX files (train-images-idx3-ubyte[.gz]), nor usable PNG images, \
             nor sub-folders of PNG images (one per class)",
            dir.display()
        )
    })?;
    let (rows, cols) = p.shape.context("PNG folder without an image size")?;
    let count = p.len();
    Ok((
        ImageSet {
            rows,
            cols,
            pixels: p.data.iter().map(|&v| v as f32).collect(),
            labels: None,
            source: format!("png:{}", dir.display()),
            warnings: summarize_warnings(p.warnings, count),
            class_names: None,
        },
        count,
    ))
}

/// The class sub-folders of `dir` (sorted by name) when it holds no PNG file itself and at least
/// one sub-folder holding PNG files; `None` otherwise (a flat PNG folder, or nothing usable).
fn class_folders(dir: &Path) -> Result<Option<Vec<(String, PathBuf)>>> {
    let is_png = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
            && p.is_file()
    };
    let mut subs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if is_png(&path) {
            return Ok(None);
        }
        if path.is_dir() {
            let has_png = std::fs::read_dir(&path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok())
                .any(|e| is_png(&e.path()));
            if has_png {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                subs.push((name, path));
            }
        }
    }
    if subs.is_empty() {
        return Ok(None);
    }
    subs.sort();
    Ok(Some(subs))
}

/// Most classes a class-folder set may have (labels are bytes).
pub const MAX_CLASSES: usize = 256;

/// Reads a folder with one sub-folder of same-size PNGs per class: label c for the c-th
/// sub-folder in name order, images in file-name order within each.
fn load_class_folders(dir: &Path, classes: &[(String, PathBuf)]) -> Result<ImageSet> {
    if classes.len() > MAX_CLASSES {
        bail!(
            "{} has {} class sub-folders; at most {MAX_CLASSES} classes are supported",
            dir.display(),
            classes.len()
        );
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut warnings = Vec::new();
    let mut size: Option<(usize, usize, String)> = None;
    for (c, (name, path)) in classes.iter().enumerate() {
        let p = load_patterns(path)
            .with_context(|| format!("cannot read the class folder {}", path.display()))?;
        let shape = p.shape.context("PNG folder without an image size")?;
        match &size {
            None => size = Some((shape.0, shape.1, name.clone())),
            Some((r, k, first)) if (*r, *k) != shape => bail!(
                "the images of class `{name}` are {}×{} pixels but those of class `{first}` are \
                 {r}×{k}: every image must have the same size",
                shape.0,
                shape.1
            ),
            Some(_) => {}
        }
        check_pool_size(pixels.len() + p.data.len(), dir)?;
        labels.extend(std::iter::repeat_n(c as u8, p.len()));
        pixels.extend(p.data.iter().map(|&v| v as f32));
        warnings.extend(p.warnings);
    }
    let (rows, cols, _) = size.context("no class folders")?;
    let count = labels.len();
    Ok(ImageSet {
        rows,
        cols,
        pixels,
        labels: Some(labels),
        source: format!("png:{}", dir.display()),
        warnings: summarize_warnings(warnings, count),
        class_names: Some(classes.iter().map(|(n, _)| n.clone()).collect()),
    })
}

/// One summary line per kind of per-file conversion (colour → grey, alpha dropped) instead of a
/// line per file, naming the first file; other warnings pass unchanged.
pub fn summarize_warnings(warnings: Vec<String>, images: usize) -> Vec<String> {
    let mut colour: Vec<String> = Vec::new();
    let mut alpha: Vec<String> = Vec::new();
    let mut rest = Vec::new();
    for w in warnings {
        if let Some((file, _)) = w.split_once(": colour image") {
            colour.push(file.to_string());
        } else if let Some(file) = w.strip_suffix(": alpha channel ignored") {
            alpha.push(file.to_string());
        } else {
            rest.push(w);
        }
    }
    let mut out = Vec::new();
    if let Some(first) = colour.first() {
        out.push(format!(
            "{} of {images} images are in colour (e.g. {first}): converted to grey by Rec. 709 \
             luma",
            colour.len()
        ));
    }
    if let Some(first) = alpha.first() {
        out.push(format!(
            "{} of {images} images have an alpha channel (e.g. {first}): ignored",
            alpha.len()
        ));
    }
    out.extend(rest);
    out
}

/// The images with labels in `digits` (all images when `digits` is empty), in order.
pub fn filter_labels(set: &ImageSet, digits: &[u8]) -> Result<ImageSet> {
    if digits.is_empty() {
        return Ok(set.clone());
    }
    let Some(labels) = &set.labels else {
        bail!(
            "cannot select digits {digits:?}: {} has no labels (use --digits '' for unlabelled data)",
            set.source
        );
    };
    let idx: Vec<usize> = (0..labels.len())
        .filter(|&i| digits.contains(&labels[i]))
        .collect();
    if idx.is_empty() {
        let mut present: Vec<u8> = labels.clone();
        present.sort_unstable();
        present.dedup();
        bail!(
            "--digits {digits:?} selects no images of {} (labels present: {present:?})",
            set.source
        );
    }
    Ok(set.select(&idx))
}

/// The NLM's pixel map: `x = atanh(clamp(2p − 1, −1 + ε, 1 − ε))`.
pub fn atanh_map(pixels: &[f32], eps: f64) -> Vec<f32> {
    let lim = 1.0 - eps;
    pixels
        .iter()
        .map(|&p| (2.0 * p as f64 - 1.0).clamp(-lim, lim).atanh() as f32)
        .collect()
}

/// Images in display space `2p − 1` ∈ [−1, 1] (what metrics compare against).
pub fn signed(pixels: &[f32]) -> Vec<f32> {
    pixels.iter().map(|&p| 2.0 * p - 1.0).collect()
}

/// Parses a digit list such as `1,3,6` (empty string: no filter).
pub fn parse_digits(s: &str) -> Result<Vec<u8>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u8>()
                .with_context(|| format!("`{t}` in --digits is not a label 0-255"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_cap_refuses_what_would_not_fit_as_f32() {
        let d = Path::new("x");
        assert!(check_pool_size(70_000 * 784, d).is_ok());
        let e = check_pool_size(MAX_POOL_PIXELS + 1, d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pixels") && e.contains("subset"), "{e}");
    }

    fn tiny() -> ImageSet {
        ImageSet {
            rows: 2,
            cols: 2,
            pixels: vec![0.0, 0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            labels: Some(vec![3, 1, 3]),
            source: "tiny".into(),
            warnings: vec![],
            class_names: None,
        }
    }

    #[test]
    fn filter_pool_and_map() -> Result<()> {
        let s = tiny();
        let f = filter_labels(&s, &[3])?;
        assert_eq!(f.len(), 2);
        assert_eq!(f.image(1), &[0.0; 4]);
        assert!(filter_labels(&s, &[7]).is_err());
        let p = s.pooled(2)?;
        assert_eq!((p.rows, p.cols, p.len()), (1, 1, 3));
        assert_eq!(p.pixels, vec![0.5, 1.0, 0.0]);
        assert!(s.pooled(3).is_err());
        // Binarising thresholds at 0.5 (mid-grey goes to 0) and keeps size and labels.
        let b = s.clone().binarized();
        assert_eq!(
            b.pixels,
            vec![0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!((b.rows, b.len(), b.labels), (2, 3, s.labels.clone()));
        assert_eq!(s.pooled(2)?.binarized().pixels, vec![0.0, 1.0, 0.0]);
        let mut again = b.pixels.clone();
        binarize_pixels(&mut again);
        assert_eq!(again, b.pixels);
        let x = atanh_map(&[0.0, 0.5, 1.0], 0.03);
        assert!((x[0] as f64 + 0.97f64.atanh()).abs() < 1e-6 && x[1] == 0.0);
        assert!((x[2] as f64 - 2.0923).abs() < 1e-3);
        assert_eq!(parse_digits("1, 3,6")?, vec![1, 3, 6]);
        assert!(parse_digits("1,x").is_err());
        assert!(parse_digits("")?.is_empty());
        Ok(())
    }

    /// Sub-folders of PNGs are classes in name order, images in file order within each; a
    /// folder with PNGs of its own is a flat, unlabelled set; one summary line per conversion.
    #[test]
    fn class_folders_are_labelled_in_name_order() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("attractor-classes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, count, level) in [("zebra", 2u8, 200u8), ("ant", 3, 100)] {
            std::fs::create_dir_all(dir.join(name))?;
            for i in 0..count {
                image::GrayImage::from_pixel(3, 2, image::Luma([level + i]))
                    .save(dir.join(name).join(format!("{i}.png")))?;
            }
        }
        // A colour image among the ants; a stray non-PNG file is ignored.
        image::RgbImage::from_pixel(3, 2, image::Rgb([90, 90, 90]))
            .save(dir.join("ant").join("9.png"))?;
        std::fs::write(dir.join("notes.txt"), "x")?;
        let (set, count) = load_source(dir.to_str().context("path")?)?;
        assert_eq!((count, set.rows, set.cols), (6, 2, 3));
        assert_eq!(set.labels, Some(vec![0, 0, 0, 0, 1, 1]));
        assert_eq!(set.class_name(1), "zebra");
        assert!((set.image(4)[0] - 200.0 / 255.0).abs() < 1e-6);
        assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
        assert!(set.warnings[0].starts_with("1 of 6 images are in colour"));
        assert!(set.is_png_folder());
        // Labels survive selection; a PNG at the top level makes it a flat folder.
        assert_eq!(set.select(&[5, 0]).labels, Some(vec![1, 0]));
        image::GrayImage::new(3, 2).save(dir.join("top.png"))?;
        let (flat, n) = load_source(dir.to_str().context("path")?)?;
        assert_eq!(
            (n, flat.labels.is_none(), flat.class_names.is_none()),
            (1, true, true)
        );
        std::fs::remove_dir_all(&dir)?;
        let many: Vec<String> = (0..5)
            .map(|i| {
                format!("f{i}.png: colour image (Rgb8) converted to greyscale (Rec. 709 luma)")
            })
            .chain([
                "g.png: alpha channel ignored".to_string(),
                "other".to_string(),
            ])
            .collect();
        assert_eq!(
            summarize_warnings(many, 9),
            vec![
                "5 of 9 images are in colour (e.g. f0.png): converted to grey by Rec. 709 luma"
                    .to_string(),
                "1 of 9 images have an alpha channel (e.g. g.png): ignored".to_string(),
                "other".to_string()
            ]
        );
        Ok(())
    }

    #[test]
    fn bundled_mnist_pool_order() -> Result<()> {
        let (set, n_train) = load_source("mnist")?;
        assert_eq!(
            (set.len(), n_train, set.rows, set.cols),
            (70_000, 60_000, 28, 28)
        );
        let f = filter_labels(&set, &[1, 3, 6])?;
        assert_eq!(f.len(), 21_894);
        Ok(())
    }
}
