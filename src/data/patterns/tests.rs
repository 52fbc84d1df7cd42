//! Tests of the pattern readers (CSV/TSV text, `.npy`, PNG folders, the bundled digits).
use super::*;
use image::{ImageBuffer, Luma, Rgb};

/// A scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("attractor-patterns-{}-{name}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn file(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.0.join(name);
        fs::write(&path, contents)?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn digits_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits/digits.csv.gz")
}

/// The `PatternError` inside a failed load, failing the test if there is none.
fn pattern_error<T: fmt::Debug>(result: Result<T>) -> PatternError {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => match e.downcast_ref::<PatternError>() {
            Some(pe) => pe.clone(),
            None => panic!("expected a PatternError, got {e:#}"),
        },
    }
}

fn assert_standardised(rows: &Patterns) {
    for (i, row) in rows.rows().enumerate() {
        let n = row.len() as f64;
        let mean = row.iter().sum::<f64>() / n;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-12, "row {i}: mean {mean}");
        assert!(
            (var.sqrt() - 1.0).abs() < 1e-12,
            "row {i}: std {}",
            var.sqrt()
        );
    }
}

#[test]
fn digits_load_raw() -> Result<()> {
    let digits = load_digits_csv_gz(&digits_path())?;
    assert_eq!(digits.len(), 1797);
    assert_eq!(digits.n, 64);
    assert_eq!(digits.data.len(), 1797 * 64);
    assert_eq!(digits.shape, Some((8, 8)));
    assert!(digits.warnings.is_empty());
    let labels = digits.labels.as_deref().unwrap_or_default();
    assert_eq!(labels.len(), 1797);
    assert_eq!(&labels[..10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let mut counts = [0usize; 10];
    for &l in labels {
        counts[l] += 1;
    }
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert!(digits.data.iter().all(|v| (0.0..=16.0).contains(v)));
    // First image (a zero) starts 0,0,5,13,9,1,0,0.
    assert_eq!(
        &digits.row(0)[..8],
        &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]
    );
    Ok(())
}

#[test]
fn digits_preprocessing() -> Result<()> {
    let path = digits_path();
    let raw = load_digits_csv_gz(&path)?;
    let (train, test) = digits_preprocessed(&path)?;
    assert_eq!(train.len(), 10);
    assert_eq!(test.len(), 1787);
    assert_eq!(train.n, 64);
    assert_eq!(test.n, 64);
    assert_eq!(train.shape, Some((8, 8)));
    assert_eq!(
        train.labels.as_deref(),
        Some(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9][..])
    );
    let raw_labels = raw.labels.as_deref().unwrap_or_default();
    assert_eq!(test.labels.as_deref(), raw_labels.get(10..));
    assert_standardised(&train);
    assert_standardised(&test);

    // Train row 3 and test row 0 are raw rows 3 and 10 squared and z-scored.
    for (got, raw_row) in [(train.row(3), raw.row(3)), (test.row(0), raw.row(10))] {
        let mut expected: Vec<f64> = raw_row.iter().map(|v| v * v).collect();
        zscore_rows(&mut expected, 64)?;
        assert_eq!(got, &expected[..]);
    }
    Ok(())
}

#[test]
fn digits_bad_rows() -> Result<()> {
    let dir = TempDir::new("digits-bad")?;
    let path = dir.0.join("d.csv.gz");
    let pixels = vec!["0"; 64].join(",");
    let cases: Vec<(String, PatternError)> = vec![
        (
            format!("{pixels},1\n{pixels}\n"),
            PatternError::ColumnCount {
                path: path.clone(),
                line: 2,
                found: 64,
                expected: 65,
            },
        ),
        (
            format!("{pixels},1.5\n"),
            PatternError::BadLabel {
                path: path.clone(),
                line: 1,
                text: "1.5".into(),
            },
        ),
        (
            format!("17,{},3\n", vec!["0"; 63].join(",")),
            PatternError::OutOfRange {
                path: path.clone(),
                at: Cell::line(1, 1),
                value: 17.0,
                min: 0.0,
                max: 16.0,
            },
        ),
        (
            String::new(),
            PatternError::NoPatterns { path: path.clone() },
        ),
    ];
    for (text, expected) in cases {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        io::Write::write_all(&mut encoder, text.as_bytes())?;
        fs::write(&path, encoder.finish()?)?;
        assert_eq!(pattern_error(load_digits_csv_gz(&path)), expected);
    }
    // Float-formatted values as scikit-learn writes them are accepted.
    let floats = vec!["1.000000000000000000e+00"; 64].join(",");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut encoder, format!("{floats},7.0e+00\n").as_bytes())?;
    fs::write(&path, encoder.finish()?)?;
    let d = load_digits_csv_gz(&path)?;
    assert_eq!(d.labels, Some(vec![7]));
    assert!(d.data.iter().all(|&v| v == 1.0));
    Ok(())
}

#[test]
fn zscore_rows_values_and_errors() {
    let mut data = vec![1.0, 2.0, 3.0, 10.0, 10.0, 30.0];
    assert_eq!(zscore_rows(&mut data, 3), Ok(()));
    let s = (1.5_f64).sqrt();
    let expected = [
        -s,
        0.0,
        s,
        -1.0 / 2f64.sqrt(),
        -1.0 / 2f64.sqrt(),
        2f64.sqrt(),
    ];
    for (a, b) in data.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let mut constant = vec![1.0, 2.0, 0.1, 0.1, 0.1, 0.1];
    assert_eq!(
        zscore_rows(&mut constant, 2),
        Err(PatternError::ZeroVariance { row: 1 })
    );
    let mut bad = vec![1.0, f64::NAN];
    assert_eq!(
        zscore_rows(&mut bad, 2),
        Err(PatternError::NonFiniteRow { row: 0 })
    );
    assert_eq!(
        zscore_rows(&mut [1.0, 2.0, 3.0], 2),
        Err(PatternError::RowLength { len: 3, n: 2 })
    );
    assert_eq!(
        zscore_rows(&mut [], 0),
        Err(PatternError::RowLength { len: 0, n: 0 })
    );
}

#[test]
fn text_good_cases() -> Result<()> {
    let dir = TempDir::new("text-good")?;
    let csv = dir.file(
        "p.csv",
        "# two patterns\n\n1, 2 ,3\r\n  # indented comment\n-4.5,5e-1,+6\n\n",
    )?;
    let p = load_patterns(&csv)?;
    assert_eq!((p.len(), p.n), (2, 3));
    assert_eq!(p.data, vec![1.0, 2.0, 3.0, -4.5, 0.5, 6.0]);
    assert_eq!(p.row(1), &[-4.5, 0.5, 6.0]);
    assert_eq!(p.labels, None);
    assert_eq!(p.shape, None);
    assert!(p.warnings.is_empty());

    let txt = dir.file("p.TXT", "1 2\t3\n  4   5 6  \n")?;
    let p = load_patterns(&txt)?;
    assert_eq!((p.len(), p.n), (2, 3));
    assert_eq!(p.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

    let single = dir.file("one.txt", "\u{feff}0.25\n")?;
    let p = load_patterns(&single)?;
    assert_eq!((p.len(), p.n, p.data.clone()), (1, 1, vec![0.25]));
    Ok(())
}

#[test]
fn text_bad_cases() -> Result<()> {
    let dir = TempDir::new("text-bad")?;

    let path = dir.file("mixed.csv", "# c\n1,2,3\n4,5,6\n\n7,8\n")?;
    let err = pattern_error(load_patterns(&path));
    assert_eq!(
        err,
        PatternError::MixedLength {
            path: path.clone(),
            at: Record::Line(5),
            found: 2,
            first: Record::Line(2),
            expected: 3,
        }
    );
    assert!(
        err.to_string()
            .contains("line 5 has 2 values but line 2 has 3")
    );

    let path = dir.file("nan.csv", "1,2\n3,NaN\n")?;
    let err = pattern_error(load_patterns(&path));
    assert!(
        matches!(err, PatternError::NonFinite { at, value, .. }
            if at == Cell::line(2, 2) && value.is_nan()),
        "{err:?}"
    );
    let path = dir.file("inf.txt", "1 2\n3 4\n-inf 0\n")?;
    assert!(matches!(
        pattern_error(load_patterns(&path)),
        PatternError::NonFinite { at, value, .. } if at == Cell::line(3, 1) && value == f64::NEG_INFINITY
    ));

    let path = dir.file("empty.csv", "")?;
    assert_eq!(
        pattern_error(load_patterns(&path)),
        PatternError::NoPatterns { path: path.clone() }
    );
    let path = dir.file("comments.txt", "# nothing\n\n   \n#x\n")?;
    assert_eq!(
        pattern_error(load_patterns(&path)),
        PatternError::NoPatterns { path: path.clone() }
    );

    let path = dir.file("word.csv", "1,2,3\n4,five,6\n")?;
    let result = load_patterns(&path);
    let message = match &result {
        Err(e) => format!("{e:#}"),
        Ok(_) => String::new(),
    };
    assert_eq!(
        pattern_error(result),
        PatternError::NotNumeric {
            path: path.clone(),
            at: Cell::line(2, 2),
            text: "five".into(),
        }
    );
    assert!(message.contains("word.csv"), "{message}");
    assert!(message.contains("line 2, column 2"), "{message}");
    assert!(message.contains("\"five\""), "{message}");

    let path = dir.file("gap.csv", "1,,3\n")?;
    assert_eq!(
        pattern_error(load_patterns(&path)),
        PatternError::NotNumeric {
            path: path.clone(),
            at: Cell::line(1, 2),
            text: String::new(),
        }
    );
    Ok(())
}

#[test]
fn source_errors() -> Result<()> {
    let dir = TempDir::new("source")?;
    let missing = dir.0.join("missing.csv");
    let result = load_patterns(&missing);
    let message = match &result {
        Err(e) => format!("{e:#}"),
        Ok(_) => String::new(),
    };
    assert!(message.contains("missing.csv"), "{message}");
    assert_eq!(
        pattern_error(result),
        PatternError::NotFound { path: missing }
    );
    let other = dir.file("p.json", "[1, 2]")?;
    assert_eq!(
        pattern_error(load_patterns(&other)),
        PatternError::Unsupported { path: other }
    );
    let missing = dir.0.join("missing.csv.gz");
    assert_eq!(
        pattern_error(load_digits_csv_gz(&missing)),
        PatternError::NotFound { path: missing }
    );
    Ok(())
}

#[test]
fn npy_round_trip_and_errors() -> Result<()> {
    let dir = TempDir::new("npy")?;
    let data: Vec<f64> = (0..12).map(|i| f64::from(i) * 0.5 - 1.0).collect();

    let path = dir.0.join("p.npy");
    crate::npy::write_npy_f64(&path, &[3, 4], &data)?;
    let p = load_patterns(&path)?;
    assert_eq!((p.len(), p.n), (3, 4));
    assert_eq!(p.data, data);
    assert_eq!(p.row(2), &data[8..]);
    assert!(p.source.contains("p.npy"));

    let path = dir.0.join("one.npy");
    crate::npy::write_npy_f64(&path, &[12], &data)?;
    let p = load_patterns(&path)?;
    assert_eq!((p.len(), p.n), (1, 12));
    assert_eq!(p.data, data);

    let path = dir.0.join("cube.npy");
    crate::npy::write_npy_f64(&path, &[2, 3, 2], &data)?;
    assert_eq!(
        pattern_error(load_patterns(&path)),
        PatternError::NpyDims {
            path: path.clone(),
            shape: vec![2, 3, 2],
        }
    );

    let path = dir.0.join("scalar.npy");
    crate::npy::write_npy_f64(&path, &[], &[1.0])?;
    assert!(matches!(
        pattern_error(load_patterns(&path)),
        PatternError::NpyDims { shape, .. } if shape.is_empty()
    ));

    let path = dir.0.join("none.npy");
    crate::npy::write_npy_f64(&path, &[0, 4], &[])?;
    assert_eq!(
        pattern_error(load_patterns(&path)),
        PatternError::ZeroSize {
            path: path.clone(),
            p: 0,
            n: 4,
        }
    );
    let path = dir.0.join("zero-len.npy");
    crate::npy::write_npy_f64(&path, &[3, 0], &[])?;
    assert_eq!(
        pattern_error(load_patterns(&path)),
        PatternError::ZeroSize {
            path: path.clone(),
            p: 3,
            n: 0,
        }
    );

    let mut bad = data.clone();
    bad[6] = f64::INFINITY;
    let path = dir.0.join("inf.npy");
    crate::npy::write_npy_f64(&path, &[3, 4], &bad)?;
    let err = pattern_error(load_patterns(&path));
    assert_eq!(
        err,
        PatternError::NonFinite {
            path: path.clone(),
            at: Cell::row(1, 2),
            value: f64::INFINITY,
        }
    );
    assert!(err.to_string().contains("row 1, column 2"));
    Ok(())
}

#[test]
fn png_folder() -> Result<()> {
    let dir = TempDir::new("png")?;
    // Width 3, height 2. Written out of name order to check the sort.
    let grey_c = ImageBuffer::from_fn(3, 2, |x, y| Luma([(10 * (x + 3 * y)) as u8]));
    grey_c.save(dir.0.join("c.png"))?;
    let grey_a = ImageBuffer::from_fn(3, 2, |x, _| Luma([if x == 0 { 255u8 } else { 0 }]));
    grey_a.save(dir.0.join("a.png"))?;
    let colour_b = ImageBuffer::from_fn(3, 2, |x, _| match x {
        0 => Rgb([255u8, 0, 0]),
        1 => Rgb([0, 255, 0]),
        _ => Rgb([255, 255, 255]),
    });
    colour_b.save(dir.0.join("b.png"))?;
    dir.file("notes.txt", "not an image")?;

    let p = load_patterns(&dir.0)?;
    assert_eq!((p.len(), p.n), (3, 6));
    assert_eq!(p.shape, Some((2, 3)));
    assert_eq!(p.row(0), &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    let b = p.row(1);
    assert!((b[0] - 0.2126).abs() < 1e-12, "{b:?}");
    assert!((b[1] - 0.7152).abs() < 1e-12, "{b:?}");
    assert!((b[2] - 1.0).abs() < 1e-12, "{b:?}");
    let c: Vec<f64> = (0..6).map(|i| f64::from(10 * i) / 255.0).collect();
    assert_eq!(p.row(2), &c[..]);
    assert!(p.data.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("b.png"), "{:?}", p.warnings);
    assert!(p.warnings[0].contains("greyscale"), "{:?}", p.warnings);
    Ok(())
}

#[test]
fn png_folder_mixed_sizes() -> Result<()> {
    let dir = TempDir::new("png-mixed")?;
    ImageBuffer::from_pixel(4, 4, Luma([0u8])).save(dir.0.join("01.png"))?;
    ImageBuffer::from_pixel(4, 4, Luma([9u8])).save(dir.0.join("02.png"))?;
    ImageBuffer::from_pixel(5, 4, Luma([9u8])).save(dir.0.join("03.png"))?;
    ImageBuffer::from_pixel(3, 3, Luma([9u8])).save(dir.0.join("04.png"))?;
    let result = load_patterns(&dir.0);
    let message = match &result {
        Err(e) => format!("{e:#}"),
        Ok(_) => String::new(),
    };
    assert_eq!(
        pattern_error(result),
        PatternError::ImageSize {
            path: dir.0.join("03.png"),
            found: (4, 5),
            first: dir.0.join("01.png"),
            expected: (4, 4),
        }
    );
    assert!(message.contains("03.png"), "{message}");
    assert!(message.contains("4x5"), "{message}");
    assert!(message.contains("4x4"), "{message}");
    Ok(())
}

#[test]
fn png_folder_empty() -> Result<()> {
    let dir = TempDir::new("png-empty")?;
    assert_eq!(
        pattern_error(load_patterns(&dir.0)),
        PatternError::NoPngs {
            path: dir.0.clone()
        }
    );
    dir.file("readme.txt", "no images here")?;
    fs::create_dir(dir.0.join("sub.png"))?;
    assert_eq!(
        pattern_error(load_patterns(&dir.0)),
        PatternError::NoPngs {
            path: dir.0.clone()
        }
    );
    Ok(())
}
