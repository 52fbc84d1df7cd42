//! Tests of the figures: sizes, pixels where data is drawn, clipping, text, colours.
use super::*;
use crate::atomic::tmp_path;
use std::path::PathBuf;

/// The pixel plotters draws for the position `data_to_pixel` reports.
fn px(img: &RgbImage, p: (f64, f64)) -> Color {
    let (x, y) = ipx(p);
    img.get_pixel(x as u32, y as u32).0
}

fn count(img: &RgbImage, keep: impl Fn(Color) -> bool) -> usize {
    img.pixels().filter(|p| keep(p.0)).count()
}

fn dark(c: Color) -> bool {
    c.iter().all(|&v| v < 100)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plot_test_{}_{name}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn font_metrics() {
    let m = metrics();
    assert!((m.em - 2048.0 / 2384.0).abs() < 1e-12);
    for c in (' '..='~').chain(['\u{2212}', 'Δ', 'β']) {
        assert!(m.glyphs.contains_key(&c), "{c:?} unmapped");
    }
    // DejaVu Sans digits are tabular; 'l' has a wider left bearing than 'o'.
    let w = |c| m.glyphs[&c].0;
    assert!(('0'..='9').all(|d| w(d) == w('0')));
    assert!(m.glyphs[&'l'].1 > m.glyphs[&'o'].1);
    assert_eq!(text_w("", 15.0), 0);
    assert!(text_w("ab", 30.0) >= 2 * text_w("ab", 15.0) - 1);
}

#[test]
fn colormap_and_palette() {
    assert_eq!(colormap(0.0), CMAP_ANCHORS[0]);
    assert_eq!(colormap(1.0), CMAP_ANCHORS[8]);
    assert_eq!(colormap(-5.0), colormap(0.0));
    assert_eq!(colormap(f64::NAN), NAN_COLOR);
    // Luminance increases monotonically.
    let lum = |c: Color| 0.3 * f64::from(c[0]) + 0.59 * f64::from(c[1]) + 0.11 * f64::from(c[2]);
    let l: Vec<f64> = (0..=100)
        .map(|i| lum(colormap(f64::from(i) / 100.0)))
        .collect();
    assert!(l.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(palette(3), palette(13));
    for (i, a) in PALETTE.iter().enumerate() {
        assert!(!PALETTE[..i].contains(a), "duplicate palette colour {i}");
    }
}

#[test]
fn tick_labels() {
    let labels = |r, n| ticks(r, n).into_iter().map(|t| t.1).collect::<Vec<_>>();
    assert_eq!(
        labels((0.0, 1.0), 6),
        ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    );
    // Both ends are kept, and minus signs are typeset.
    assert_eq!(labels((-1.0, 0.0), 6)[0], "\u{2212}1.0");
    assert_eq!(labels((-3.3, 7.9), 6), ["\u{2212}2", "0", "2", "4", "6"]);
    assert_eq!(labels((0.0, 0.001), 6)[1], "0.0002");
    assert_eq!(format_tick(0.1 + 0.2, 0.1, 1.0), "0.3");
    assert_eq!(format_tick(2.0e5, 1.0e5, 5.0e5), "2e5");
    assert_eq!(format_tick(1.5e5, 5.0e4, 5.0e5), "1.5e5");
    assert_eq!(format_tick(-2.5e-5, 2.5e-5, 1e-4), "-2.5e-5");
    assert_eq!(format_tick(-1e-17, 0.5, 2.0), "0");
    assert_eq!(format_compact(4.56789), "4.57");
    assert_eq!(format_compact(100.0), "100");
    assert_eq!(format_compact(0.000123), "1.23e-4");
    assert_eq!(format_compact(123456.0), "1.23e5");
    assert_eq!(format_compact(-0.5), "-0.5");
    assert_eq!(format_compact(f64::NAN), "nan");
    let huge = ticks((1e300, 1.7e308), 5);
    assert!(!huge.is_empty() && huge.len() <= 5);
}

#[test]
fn ranges_and_transform() {
    let mut ax = Axes::new();
    assert_eq!(ax.ranges(), ((0.0, 1.0), (0.0, 1.0)));
    ax.line(&[0.0, 10.0], &[-1.0, 1.0], BLACK);
    let ((x0, x1), (y0, y1)) = ax.ranges();
    assert!((x0 + 0.5).abs() < 1e-12 && (x1 - 10.5).abs() < 1e-12);
    assert!((y0 + 1.1).abs() < 1e-12 && (y1 - 1.1).abs() < 1e-12);
    ax.set_xlim(2.0, -2.0);
    assert_eq!(ax.ranges().0, (-2.0, 2.0));
    ax.set_ylim(3.0, 3.0);
    let yr = ax.ranges().1;
    assert!(yr.0 < 3.0 && yr.1 > 3.0);
    // Heatmap-only panels are tight; a single point gets a non-degenerate range.
    let mut hm = Axes::new();
    hm.heatmap(&[0.0; 6], 3, 2, (0.0, 3.0), (-1.0, 1.0));
    assert_eq!(hm.ranges(), ((0.0, 3.0), (-1.0, 1.0)));
    let mut one = Axes::new();
    one.scatter(&[5.0], &[0.0], BLACK, 2);
    let ((a, b), (c, d)) = one.ranges();
    assert!(a < 5.0 && b > 5.0 && c < 0.0 && d > 0.0);

    // The range corners map to the plot-area corners, inside the panel.
    let mut fig = Figure::new(2, 1, 300, 200);
    fig.axes(1, 0).set_xlim(0.0, 10.0).set_ylim(-1.0, 1.0);
    let l = fig.layout_of(1, 0);
    let (left, top) = (f64::from(l.plot.x), f64::from(l.plot.y));
    assert_eq!(
        fig.data_to_pixel(1, 0, 0.0, -1.0),
        Some((left, f64::from(l.plot.bottom())))
    );
    assert_eq!(
        fig.data_to_pixel(1, 0, 10.0, 1.0),
        Some((f64::from(l.plot.right()), top))
    );
    assert!(l.plot.x >= 300 && l.plot.right() < 600 && l.plot.w > 150 && l.plot.h > 100);
    assert_eq!(fig.data_to_pixel(2, 0, 0.0, 0.0), None);
    assert_eq!(fig.panel_ranges(1, 0), Some(((0.0, 10.0), (-1.0, 1.0))));
    assert!(ticks(l.xr, l.nx).len() >= 3 && ticks(l.yr, l.ny).len() >= 3);
}

#[test]
fn equal_aspect_expands_one_axis() {
    let mut fig = Figure::new(1, 1, 400, 200);
    fig.axes(0, 0)
        .set_xlim(0.0, 1.0)
        .set_ylim(0.0, 1.0)
        .set_equal_aspect(true);
    let l = fig.layout_of(0, 0);
    let (sx, sy) = l.scales();
    assert!((sx - sy).abs() < 1e-9 * sx);
    assert!(l.xr.1 - l.xr.0 > 1.0 && l.yr == (0.0, 1.0));
}

#[test]
fn lines_are_drawn_where_expected() {
    let (red, blue) = ([255, 0, 0], [0, 0, 255]);
    let mut fig = Figure::new(1, 1, 320, 240);
    fig.axes(0, 0)
        .set_xlim(0.0, 10.0)
        .set_ylim(0.0, 10.0)
        .set_grid(true)
        .line(&[0.0, 10.0], &[5.0, 5.0], red)
        .line_width(&[2.0, 2.0], &[0.0, 10.0], blue, 3)
        .hline(8.0, GREY);
    let img = fig.render();
    let at = |x, y| px(&img, fig.data_to_pixel(0, 0, x, y).unwrap());
    for x in [1.0, 3.3, 5.0, 7.7, 9.0] {
        assert_eq!(at(x, 5.0), red, "x={x}");
        assert_eq!(at(x, 8.0), GREY, "x={x}");
    }
    assert_eq!(at(2.0, 1.0), blue);
    assert_eq!(at(2.0, 7.0), blue);
    assert_eq!(at(5.5, 7.0), WHITE);
    // Grid lines at the ticks.
    assert_eq!(at(6.0, 7.0), LIGHT_GREY);
    // The red line is one pixel thick: as many pixels as the plot is wide.
    let n = count(&img, |c| c == red) as i32;
    assert!((n - fig.layout_of(0, 0).plot.w).abs() <= 4, "{n}");
}

#[test]
fn drawing_is_clipped_to_plot_area() {
    let green = |c: Color| i32::from(c[1]) > i32::from(c[0]) + 60;
    let mut fig = Figure::new(1, 1, 200, 150);
    fig.axes(0, 0)
        .set_xlim(0.0, 1.0)
        .set_ylim(0.0, 1.0)
        .line_width(&[-100.0, 100.0], &[-50.0, 60.0], [0, 200, 0], 2)
        .line(&[-1e300, 1e300], &[0.5, 0.5], [0, 200, 0])
        .scatter(
            &[0.0, 1.0, 5.0, -1e200],
            &[0.0, 1.0, 0.5, 1e200],
            [0, 200, 0],
            6,
        )
        .text(0.9, 0.1, "clipped text", [0, 200, 0]);
    let img = fig.render();
    let plot = fig.layout_of(0, 0).plot;
    assert!(count(&img, green) > 50);
    for (x, y, p) in img.enumerate_pixels() {
        if green(p.0) {
            let (x, y) = (x as i32, y as i32);
            assert!(x >= plot.x && x <= plot.right() && y >= plot.y && y <= plot.bottom());
        }
    }
}

#[test]
fn non_finite_values_are_skipped() {
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    let mut fig = Figure::new(2, 2, 200, 160);
    fig.axes(0, 0)
        .line(
            &[0.0, 1.0, nan, 3.0, inf, 5.0],
            &[0.0, 1.0, 2.0, nan, 4.0, -inf],
            BLACK,
        )
        .scatter(&[nan, 1.0], &[1.0, inf], BLACK, 3)
        .hline(nan, BLACK)
        .vline(inf, BLACK)
        .text(nan, 0.0, "x", BLACK);
    let ((x0, x1), (y0, y1)) = fig.axes(0, 0).ranges();
    assert!([x0, x1, y0, y1].iter().all(|v| v.is_finite()) && x0 < 0.0 && x1 > 1.0);
    fig.axes(1, 0)
        .quiver(
            &[0.0, 1.0, nan],
            &[0.0, 1.0, 2.0],
            &[1.0, nan, 1.0],
            &[inf, 0.0, 1.0],
            BLACK,
        )
        .points_colored(&[nan, 0.5], &[0.5, 0.5], &[[1, 2, 3]]);
    fig.axes(0, 1)
        .heatmap(&[nan, 1.0, inf, 2.0], 2, 2, (0.0, 1.0), (0.0, nan))
        .heatmap(&[nan; 4], 2, 2, (0.0, 1.0), (0.0, 1.0));
    fig.axes(1, 1)
        .image_gray(&[f32::NAN, 0.5, f32::INFINITY], 2, 2, 0.0, 1.0)
        .set_xlim(nan, 1.0);
    let img = fig.render();
    assert_eq!(img.dimensions(), (400, 320));
    // The NaN cell of the heatmap is light grey.
    assert_eq!(
        px(&img, fig.data_to_pixel(0, 1, 0.25, 0.25).unwrap()),
        NAN_COLOR
    );
}

#[test]
fn empty_data_does_not_panic() {
    let mut fig = Figure::new(3, 2, 120, 90);
    fig.set_title("empty");
    fig.axes(0, 0)
        .line(&[], &[], BLACK)
        .set_title("t")
        .set_xlabel("x")
        .set_ylabel("y");
    fig.axes(1, 0).scatter(&[], &[], BLACK, 2).legend(&[]);
    fig.axes(2, 0).quiver(&[], &[], &[], &[], BLACK);
    fig.axes(0, 1).heatmap(&[], 0, 0, (0.0, 1.0), (0.0, 1.0));
    fig.axes(1, 1)
        .image_gray(&[], 0, 0, 0.0, 1.0)
        .set_axis_visible(false);
    fig.axes(2, 1)
        .points_colored(&[1.0, 2.0], &[1.0, 2.0], &[])
        .heatmap(&[], 3, 3, (0.0, 1.0), (0.0, 1.0));
    let img = fig.render();
    assert_eq!(img.dimensions(), (fig.width(), fig.height()));
    let g = image_grid(&[], 28, 28, 4, 0.0, 1.0, 2);
    assert!(g.width() >= 1 && g.height() >= 1);
    let g = image_grid(&[vec![]], 0, 0, 0, 0.0, 1.0, 0);
    assert!(g.width() >= 1 && g.height() >= 1);
    let mut tiny = Figure::new(1, 1, 1, 1);
    tiny.axes(0, 0)
        .set_title("a very long title that does not fit")
        .set_ylabel("a long y label")
        .legend(&[("a long legend entry", BLACK)])
        .line(&[0.0, 1.0], &[0.0, 1.0], BLACK);
    let _ = tiny.render();
}

#[test]
fn quiver_arrows_fit_cells() {
    let red = [250, 0, 0];
    let (mut xs, mut ys, mut us) = (vec![], vec![], vec![]);
    for (j, i) in (0..5).flat_map(|j| (0..5).map(move |i| (j, i))) {
        xs.push(f64::from(i));
        ys.push(f64::from(j));
        us.push(1.0 + f64::from(i) * 10.0);
    }
    let mut fig = Figure::new(1, 1, 300, 300);
    fig.axes(0, 0).quiver(&xs, &ys, &us, &[0.0; 25], red);
    let img = fig.render();
    let cell = fig
        .layout_of(0, 0)
        .scales()
        .0
        .min(fig.layout_of(0, 0).scales().1);
    // The longest arrows start at x = 4 and point right: their tip stays within a cell.
    let (x, y) = ipx(fig.data_to_pixel(0, 0, 4.0, 2.0).unwrap());
    let reach = (x as u32..img.width())
        .take_while(|&x| img.get_pixel(x, y as u32).0 == red)
        .count() as f64;
    assert!(
        reach > 0.5 * cell && reach <= cell + 1.0,
        "{reach} vs {cell}"
    );
    // All five rows of arrows are drawn.
    assert!(count(&img, |c| c == red) as f64 > 5.0 * reach);
}

#[test]
fn heatmap_and_image_colours() {
    let mut fig = Figure::new(2, 1, 200, 200);
    // Row 0 (bottom) low values, row 1 (top) high.
    fig.axes(0, 0)
        .heatmap(&[0.0, 0.0, 1.0, 1.0], 2, 2, (0.0, 2.0), (0.0, 2.0));
    fig.axes(1, 0)
        .image_gray(&[0.0, 1.0, 1.0, 0.0], 2, 2, 0.0, 1.0);
    let img = fig.render();
    let at = |c, x, y| px(&img, fig.data_to_pixel(c, 0, x, y).unwrap());
    assert_eq!(at(0, 0.5, 0.5), colormap(0.0));
    assert_eq!(at(0, 1.5, 1.5), colormap(1.0));
    // The cells fill the plot area to its edges.
    assert_eq!(at(0, 0.0, 0.0), colormap(0.0));
    assert_eq!(at(0, 2.0, 2.0), colormap(1.0));
    // Image row 0 is at the top: top-left black, top-right white.
    assert_eq!(at(1, 0.5, 1.5), BLACK);
    assert_eq!(at(1, 1.5, 1.5), WHITE);
    assert_eq!(at(1, 0.5, 0.5), WHITE);
    // The colour bar right of the heatmap runs from dark (bottom) to bright (top).
    let l = fig.layout_of(0, 0);
    let bar_x = (l.plot.right() + 1 + CBAR_GAP + CBAR_W / 2) as u32;
    assert_eq!(img.get_pixel(bar_x, l.plot.y as u32).0, colormap(1.0));
    assert_eq!(
        img.get_pixel(bar_x, l.plot.bottom() as u32).0,
        colormap(0.0)
    );
}

#[test]
fn text_legend_and_labels_draw_antialiased_dark_pixels() {
    let mut fig = Figure::new(1, 1, 300, 240);
    fig.set_title("Title");
    fig.axes(0, 0)
        .set_xlim(0.0, 1.0)
        .set_ylim(0.0, 1.0)
        .set_xlabel("x label")
        .set_ylabel("y label")
        .legend_at(
            &[("first", palette(0)), ("second", palette(1))],
            Corner::BottomLeft,
        );
    let img = fig.render();
    let l = fig.layout_of(0, 0);
    let region = |x0: i32, y0: i32, x1: i32, y1: i32| {
        let pixels = (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y)));
        pixels
            .map(|(x, y)| img.get_pixel(x as u32, y as u32).0)
            .collect::<Vec<_>>()
    };
    // Figure title above the panel, grey edge pixels (anti-aliasing) with the dark ones.
    let title = region(0, 0, 300, l.panel.y);
    assert!(title.iter().filter(|&&c| dark(c)).count() > 20);
    assert!(
        title
            .iter()
            .any(|c| c[0] == c[1] && (120..220).contains(&c[0]))
    );
    // The legend sits in the lower left corner of the plot area, with its swatches.
    let (x0, y1) = (l.plot.x, l.plot.bottom());
    let legend = region(x0, y1 - 60, x0 + 120, y1);
    assert!(legend.iter().filter(|&&c| dark(c)).count() > 20);
    assert!(legend.contains(&palette(0)) && legend.contains(&palette(1)));
    assert!(
        region(l.plot.right() - 60, l.plot.y, l.plot.right(), l.plot.y + 60)
            .iter()
            .all(|&c| c == WHITE)
    );
    // Axis labels below and left of the tick labels.
    let xlabel = region(
        l.plot.x,
        l.plot.bottom() + 20,
        l.plot.right(),
        l.panel.bottom(),
    );
    assert!(xlabel.iter().filter(|&&c| dark(c)).count() > 20);
    assert!(
        region(0, l.plot.y, 20, l.plot.bottom())
            .iter()
            .filter(|&&c| dark(c))
            .count()
            > 20
    );
}

#[test]
fn image_grid_layout() {
    let (a, b) = (vec![0.0f32; 4], vec![1.0f32; 4]);
    let g = image_grid(&[a.clone(), b.clone(), a], 2, 2, 2, 0.0, 1.0, 3);
    // 2 columns of 6 px + 3 separators of 2 px.
    assert_eq!(g.dimensions(), (2 * 6 + 3 * 2, 2 * 6 + 3 * 2));
    assert_eq!(g.get_pixel(0, 0).0, SEPARATOR);
    assert_eq!(g.get_pixel(2, 2).0, BLACK);
    assert_eq!(g.get_pixel(10, 2).0, WHITE);
    assert_eq!(g.get_pixel(2, 10).0, BLACK);
    // The empty slot in the last row is separator-coloured.
    assert_eq!(g.get_pixel(12, 12).0, SEPARATOR);
    assert_eq!(image_grid(&[b], 2, 2, 5, 0.0, 1.0, 1).dimensions(), (4, 4));
}

#[test]
fn png_round_trip() {
    let dir = scratch("png");
    let path = dir.join("fig.png");
    let mut fig = Figure::new(2, 1, 160, 120);
    fig.set_title("round trip");
    fig.axes(0, 0)
        .line(&[0.0, 1.0, 2.0], &[1.0, 0.0, 1.0], palette(0))
        .legend(&[("a", palette(0))]);
    fig.save_png(&path).unwrap();
    assert!(!tmp_path(&path).exists());
    assert_eq!(image::open(&path).unwrap().to_rgb8(), fig.render());
    let grid = image_grid(&[vec![0.25; 9], vec![0.75; 9]], 3, 3, 2, 0.0, 1.0, 4);
    let gpath = dir.join("grid.png");
    save_rgb_png(&grid, &gpath).unwrap();
    assert_eq!(image::open(&gpath).unwrap().to_rgb8(), grid);
    let bad = dir.join("no_such_dir").join("x.png");
    let msg = format!("{:#}", fig.save_png(&bad).unwrap_err());
    assert!(msg.contains("x.png"), "{msg}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn labels_stay_inside_panels() {
    let mut fig = Figure::new(2, 1, 220, 160);
    fig.axes(0, 0)
        .set_xlim(-123456.0, 987654.0)
        .set_ylim(-0.000123, 0.000456)
        .set_title("left")
        .set_xlabel("x label")
        .set_ylabel("y label");
    fig.axes(1, 0).set_xlim(0.0, 1.0).set_ylim(0.0, 1.0);
    let img = fig.render();
    // The second panel's left edge column is untouched by panel 0.
    let l0 = fig.layout_of(0, 0);
    assert!(l0.plot.right() < 220);
    assert!((0..img.height()).all(|y| img.get_pixel(220, y).0 == WHITE));
}

#[test]
fn training_curves_from_metrics() {
    let dir = scratch("curves");
    let (metrics, out) = (dir.join("metrics.jsonl"), dir.join("curves.png"));
    assert!(
        !training_curves(&metrics, &out).unwrap(),
        "no metrics.jsonl yet"
    );
    fs::write(&metrics, "not json\n").unwrap();
    assert!(!training_curves(&metrics, &out).unwrap() && !out.exists());
    // One logged step is already a picture: a dot per panel.
    fs::write(&metrics, "{\"step\": 1, \"loss\": 1.0, \"wall_s\": 3}\n").unwrap();
    assert!(training_curves(&metrics, &out).unwrap(), "one row");
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.width(), 360, "one panel (wall_s is bookkeeping)");
    assert!(count(&img, |c| c == palette(0)) > 10, "the dot is drawn");
    let rows: String = (1..=20)
        .map(|s| {
            format!(
                "{{\"step\": {s}, \"loss\": {}, \"lr\": 0.1, \"wall_s\": 3}}\n",
                10f64.powi(-s / 4)
            )
        })
        .collect();
    fs::write(&metrics, rows + "not json\n").unwrap();
    assert!(training_curves(&metrics, &out).unwrap());
    let img = image::open(&out).unwrap().to_rgb8();
    // Two panels (loss, drawn as log10 since it spans five decades, and lr) in one row.
    assert_eq!(img.width(), 2 * 360);
    assert!(count(&img, |c| c == palette(0)) > 100);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn running_mean_keeps_constants_and_ends() {
    assert_eq!(running_mean(&[2.0; 7], 3), vec![2.0; 7]);
    let m = running_mean(&[0.0, 3.0, 6.0, 0.0, 3.0], 3);
    assert_eq!(m, [0.0, 3.0, 3.0, 3.0, 3.0]);
    // Window 5: the second point averages three (the window shrinks at the ends).
    let m = running_mean(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 5);
    assert_eq!(m, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "a ramp is its own mean");
    assert!(running_mean(&[], 5).is_empty());
    assert_eq!(running_mean(&[4.0], 5), [4.0]);
}

/// A deterministic zig-zag of amplitude `amp` (noise-like: every step changes sign).
fn zigzag(n: usize, amp: f64) -> Vec<f64> {
    (0..n)
        .map(|i| amp * if i % 2 == 0 { 1.0 } else { -1.0 } * (1.0 + (i % 3) as f64))
        .collect()
}

#[test]
fn only_noisy_series_are_smoothed() {
    // Noise around a constant: smoothed, and the mean is far flatter than the raw series.
    let noisy: Vec<f64> = zigzag(100, 1.0).iter().map(|v| v + 5.0).collect();
    let mean = smoothed(&noisy).expect("noise is smoothed");
    let spread = |v: &[f64]| v.iter().fold(0f64, |m, x| m.max((x - 5.0).abs()));
    assert!(spread(&mean) < 0.5 * spread(&noisy));
    // A smooth decay, and a decay with a little noise on it, are drawn raw.
    let decay: Vec<f64> = (0..100).map(|i| (-(i as f64) / 30.0).exp()).collect();
    assert!(smoothed(&decay).is_none());
    let slightly: Vec<f64> = decay
        .iter()
        .zip(zigzag(100, 1e-4))
        .map(|(a, b)| a + b)
        .collect();
    assert!(smoothed(&slightly).is_none());
    // Too few points to tell.
    assert!(smoothed(&zigzag(11, 1.0)).is_none());
}

fn series_map(entries: &[(&str, Vec<f64>)]) -> std::collections::BTreeMap<String, Series> {
    entries
        .iter()
        .map(|(k, ys)| {
            let xs = (1..=ys.len()).map(|s| s as f64 * 10.0).collect();
            (k.to_string(), (xs, ys.clone()))
        })
        .collect()
}

#[test]
fn curve_panels_merge_duplicates_and_pairs_and_carry_references() {
    // An NLM run's metrics: loss and grad_sq are one scalar logged twice.
    let g: Vec<f64> = (0..30).map(|i| 0.1 / (1.0 + i as f64)).collect();
    let series = series_map(&[
        ("chain_mean_pixel", vec![-0.6; 30]),
        ("energy_data", vec![100.0; 30]),
        ("energy_model", vec![380.0; 30]),
        ("grad_sq", g.clone()),
        ("loss", g),
    ]);
    let refs = References {
        thermal_energy: Some(392.0),
        data_mean_pixel: Some(-0.73),
    };
    let panels = curve_panels(&series, &refs);
    let titles: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["loss = grad_sq", "chain_mean_pixel", "energy"]);
    assert_eq!(panels[0].lines.len(), 1, "the duplicate is not drawn twice");
    let labels: Vec<&str> = panels[2].lines.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(labels, ["energy_data", "energy_model"]);
    assert_eq!(panels[2].rules, [("N·T/2".to_string(), 392.0)]);
    assert_eq!(panels[1].rules, [("data".to_string(), -0.73)]);
    assert!(panels[0].rules.is_empty());
    // Without references, and for other families' keys, nothing is merged or added.
    let other = series_map(&[
        ("loss", vec![3.0, 2.0, 1.0]),
        ("loss_diff", vec![1.0, 0.5, 0.2]),
        ("loss_drift", vec![2.0, 1.5, 0.8]),
    ]);
    let panels = curve_panels(&other, &References::default());
    let titles: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["loss", "loss_diff", "loss_drift"]);
    assert!(
        panels
            .iter()
            .all(|p| p.rules.is_empty() && p.lines.len() == 1)
    );
    // Equal values at different steps are different series.
    let mut shifted = series_map(&[("a", vec![1.0, 2.0]), ("b", vec![1.0, 2.0])]);
    shifted.get_mut("b").unwrap().0[1] = 99.0;
    assert_eq!(curve_panels(&shifted, &References::default()).len(), 2);
}

#[test]
fn curve_panel_draws_reference_line_and_running_mean() {
    let xs: Vec<f64> = (1..=100).map(f64::from).collect();
    let ys: Vec<f64> = zigzag(100, 1.0).iter().map(|v| v + 10.0).collect();
    let panel = CurvePanel {
        title: "energy".into(),
        lines: vec![(String::new(), (xs, ys))],
        rules: vec![("N·T/2".into(), 20.0)],
    };
    let mut fig = Figure::new(1, 1, 360, 260);
    draw_curve_panel(fig.axes(0, 0), &panel);
    let img = fig.render();
    // The reference level is a horizontal line of its colour across the panel.
    let (x0, y) = fig.data_to_pixel(0, 0, 1.0, 20.0).unwrap();
    let (x1, _) = fig.data_to_pixel(0, 0, 30.0, 20.0).unwrap();
    for x in [x0 + 2.0, (x0 + x1) / 2.0, x1] {
        assert_eq!(px(&img, (x, y)), REFERENCE, "reference line at x {x}");
    }
    // The raw series is faint and the running mean bold over it; the legend names both.
    assert!(count(&img, |c| c == faint(palette(0), 0.35)) > 100);
    assert!(count(&img, |c| c == palette(0)) > 100);
    let legend = &fig.axes(0, 0).legend;
    let names: Vec<&str> = legend.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(names, ["raw", "mean of 11", "N·T/2 = 20"]);
}

#[test]
fn legend_goes_where_the_data_are_not() {
    let mut ax = Axes::new();
    // A curve rising to the top right: the top left is empty.
    let xs: Vec<f64> = (0..50).map(f64::from).collect();
    let ys: Vec<f64> = xs.iter().map(|x| x * x).collect();
    ax.line(&xs, &ys, BLACK);
    assert_eq!(emptiest_corner(&ax), Corner::TopLeft);
    let mut flat = Axes::new();
    flat.line(&xs, &[0.0; 50], BLACK).set_ylim(0.0, 1.0);
    assert_eq!(emptiest_corner(&flat), Corner::TopRight);
}

#[test]
fn references_of_an_nlm_run_directory() {
    let dir = scratch("refs");
    assert_eq!(References::of_run(&dir), References::default());
    // N·T/2 from the newest checkpoint's header: J is 4×4 and T = 2.
    let ck = crate::checkpoint::Checkpoint {
        kind: "nlm".into(),
        step: 5,
        arrays: vec![crate::checkpoint::NamedArray {
            name: "J".into(),
            shape: vec![4, 4],
            data: vec![0.0; 16],
        }],
        extra: serde_json::json!({"temperature": 2.0}),
    };
    crate::checkpoint::save(&dir, &ck, 2).unwrap();
    let refs = References::of_run(&dir);
    assert_eq!(refs.thermal_energy, Some(4.0));
    assert_eq!(refs.data_mean_pixel, None);
    // A finished run's polarity check names both.
    fs::write(
        dir.join("polarity.json"),
        r#"{"data_mean_pixel": -0.72, "energy_thermal": 392.0}"#,
    )
    .unwrap();
    let refs = References::of_run(&dir);
    assert_eq!(refs.thermal_energy, Some(392.0));
    assert_eq!(refs.data_mean_pixel, Some(-0.72));
    // And `training_curves` draws them.
    let rows: String = (1..=5)
        .map(|s| format!("{{\"step\": {s}, \"energy_model\": 380, \"energy_data\": 90}}\n"))
        .collect();
    fs::write(dir.join("metrics.jsonl"), rows).unwrap();
    let out = dir.join("curves.png");
    assert!(training_curves(&dir.join("metrics.jsonl"), &out).unwrap());
    let img = image::open(&out).unwrap().to_rgb8();
    assert!(count(&img, |c| c == REFERENCE) > 100, "the N·T/2 line");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn densities_and_their_distance() {
    let a: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
    let (x, pa, pb, tv) = densities(&a, &a, 10);
    assert_eq!(x.len(), 10);
    assert_eq!(pa, pb);
    assert!(tv.abs() < 1e-12);
    // Uniform on [0, 1): density 1 in every bin.
    assert!(pa.iter().all(|d| (d - 1.0).abs() < 0.02), "{pa:?}");
    let b: Vec<f64> = a.iter().map(|v| v + 5.0).collect();
    assert!((densities(&a, &b, 10).3 - 1.0).abs() < 1e-12, "disjoint");
}

fn ring(k: usize, n: usize, radius: f64) -> Trajectories {
    let data = (0..k * n)
        .flat_map(|i| {
            let t = (i % n) as f64 * 0.1 + i as f64;
            [radius * t.cos(), radius * t.sin()]
        })
        .collect();
    Trajectories {
        k,
        n,
        d: 2,
        data,
        dt: 0.1,
    }
}

#[test]
fn target_and_network_in_one_picture() {
    let dir = scratch("compare");
    let out = dir.join("c.png");
    let (target, network) = (ring(3, 200, 1.0), ring(3, 200, 0.8));
    compare_trajectories(&target, &network, &out).unwrap();
    let img = image::open(&out).unwrap().to_rgb8();
    // A portrait and two densities in a row, both simulations in their colours, and the
    // difference of the densities.
    assert_eq!(img.width(), 3 * 420);
    for c in [PALETTE[0], PALETTE[1], PALETTE[3]] {
        assert!(count(&img, |p| p == c) > 200, "colour {c:?}");
    }
    let mut line = ring(1, 10, 1.0);
    line.d = 1;
    assert!(compare_trajectories(&target, &line, &out).is_err());

    // From a run directory: only once both simulations are there.
    let run = scratch("compare_run");
    assert_eq!(ddm_comparison(&run).unwrap(), None);
    for (stem, tr) in [("simulate_target", &target), ("simulate", &network)] {
        let data: Vec<f32> = tr.data.iter().map(|&v| v as f32).collect();
        crate::npy::write_npy_f32(&run.join(format!("{stem}.npy")), &[tr.k, tr.n, 2], &data)
            .unwrap();
        fs::write(run.join(format!("{stem}.json")), r#"{"dt_record": 0.1}"#).unwrap();
        if stem == "simulate_target" {
            assert_eq!(ddm_comparison(&run).unwrap(), None);
        }
    }
    let made = ddm_comparison(&run)
        .unwrap()
        .expect("both simulations exist");
    assert_eq!(made, run.join("simulate_compare.png"));
    let back = Trajectories::read(&run, "simulate").unwrap();
    assert_eq!((back.k, back.n, back.d, back.dt), (3, 200, 2, 0.1));
    assert!(image::open(&made).is_ok());
    fs::remove_dir_all(&dir).ok();
    fs::remove_dir_all(&run).ok();
}
