//! User-defined SDEs (TOML files, see [`super::expr`]) evaluated on whole batches with tensor ops.

use std::path::Path;

use anyhow::Result;
use burn::tensor::{Device, Tensor, activation};

use super::expr::{Expr, Func, Func2, UserDiffusion, UserSde, parse_user_sde};
use super::{Diffusion, col};
use crate::transfer::tensor2;

/// A user SDE bound to a device.
#[derive(Clone, Debug)]
pub struct UserTarget {
    /// The parsed system.
    pub sde: UserSde,
    /// The constant diffusion on the device (uploaded once), when it is constant.
    g_t: Option<Tensor<2>>,
}

/// A value during evaluation: a scalar (folded) or a `[B, 1]` column.
#[allow(clippy::large_enum_variant)]
enum V {
    S(f64),
    T(Tensor<2>),
}

fn binary(
    a: V,
    b: V,
    op: fn(f64, f64) -> f64,
    tt: fn(Tensor<2>, Tensor<2>) -> Tensor<2>,
    ts: fn(Tensor<2>, f64) -> Tensor<2>,
    st: fn(f64, Tensor<2>) -> Tensor<2>,
) -> V {
    match (a, b) {
        (V::S(x), V::S(y)) => V::S(op(x, y)),
        (V::T(x), V::S(y)) => V::T(ts(x, y)),
        (V::S(x), V::T(y)) => V::T(st(x, y)),
        (V::T(x), V::T(y)) => V::T(tt(x, y)),
    }
}

fn unary(f: Func, t: Tensor<2>) -> Tensor<2> {
    match f {
        Func::Sin => t.sin(),
        Func::Cos => t.cos(),
        Func::Tan => t.tan(),
        Func::Exp => t.exp(),
        Func::Log => t.log(),
        Func::Sqrt => t.sqrt(),
        Func::Abs => t.abs(),
        Func::Tanh => crate::device::fast::tanh(t),
        Func::Sinh => (t.clone().exp() - t.neg().exp()).mul_scalar(0.5),
        Func::Cosh => (t.clone().exp() + t.neg().exp()).mul_scalar(0.5),
        Func::Atan => t.atan(),
        Func::Sigmoid => activation::sigmoid(t),
        Func::Sign => t.sign(),
    }
}

fn eval(e: &Expr, z: &Tensor<2>, u: Option<&Tensor<2>>) -> V {
    match e {
        Expr::Const(c) => V::S(*c),
        Expr::Var(i) => V::T(col(z, *i)),
        Expr::Input(i) => match u {
            Some(u) => V::T(col(u, *i)),
            None => V::S(0.0),
        },
        Expr::Neg(a) => match eval(a, z, u) {
            V::S(x) => V::S(-x),
            V::T(t) => V::T(t.neg()),
        },
        Expr::Add(a, b) => binary(
            eval(a, z, u),
            eval(b, z, u),
            |x, y| x + y,
            |x, y| x + y,
            |x, y| x.add_scalar(y),
            |x, y| y.add_scalar(x),
        ),
        Expr::Sub(a, b) => binary(
            eval(a, z, u),
            eval(b, z, u),
            |x, y| x - y,
            |x, y| x - y,
            |x, y| x.sub_scalar(y),
            |x, y| y.neg().add_scalar(x),
        ),
        Expr::Mul(a, b) => binary(
            eval(a, z, u),
            eval(b, z, u),
            |x, y| x * y,
            |x, y| x * y,
            |x, y| x.mul_scalar(y),
            |x, y| y.mul_scalar(x),
        ),
        Expr::Div(a, b) => binary(
            eval(a, z, u),
            eval(b, z, u),
            |x, y| x / y,
            |x, y| x / y,
            |x, y| x.div_scalar(y),
            |x, y| y.recip().mul_scalar(x),
        ),
        Expr::Pow(a, b) => match (eval(a, z, u), eval(b, z, u)) {
            (V::S(x), V::S(y)) => V::S(if y.fract() == 0.0 {
                x.powi(y as i32)
            } else {
                x.powf(y)
            }),
            (V::T(x), V::S(y)) if y.fract() == 0.0 && y.abs() < 64.0 => {
                V::T(x.powi_scalar(y as i32))
            }
            (V::T(x), V::S(y)) => V::T(x.powf_scalar(y)),
            (V::S(x), V::T(y)) => V::T(y.mul_scalar(x.ln()).exp()),
            (V::T(x), V::T(y)) => V::T(x.powf(y)),
        },
        Expr::Func(f, a) => match eval(a, z, u) {
            V::S(x) => V::S(f.apply(x)),
            V::T(t) => V::T(unary(*f, t)),
        },
        Expr::Func2(f, a, b) => {
            let (x, y) = (eval(a, z, u), eval(b, z, u));
            if let (V::S(x), V::S(y)) = (&x, &y) {
                return V::S(f.apply(*x, *y));
            }
            let full = |v: V| match v {
                V::S(s) => Tensor::full([z.dims()[0], 1], s, &z.device()),
                V::T(t) => t,
            };
            let (x, y) = (full(x), full(y));
            V::T(match f {
                Func2::Min => x.min_pair(y),
                Func2::Max => x.max_pair(y),
                Func2::Atan2 => x.atan2(y),
            })
        }
    }
}

fn column(e: &Expr, z: &Tensor<2>, u: Option<&Tensor<2>>) -> Tensor<2> {
    match eval(e, z, u) {
        V::S(s) => Tensor::full([z.dims()[0], 1], s, &z.device()),
        V::T(t) => t,
    }
}

impl UserTarget {
    /// Parses `text` (the contents of `source`) and applies parameter overrides.
    pub fn from_text(
        text: &str,
        source: &Path,
        overrides: &[(String, f64)],
        device: &Device,
    ) -> Result<Self> {
        let sde = parse_user_sde(text, source)?;
        let sde = if overrides.is_empty() {
            sde
        } else {
            sde.with_params(overrides)?
        };
        let mut t = Self { sde, g_t: None };
        let (d, m) = (t.sde.dim, t.sde.noise_dim);
        t.g_t = t.g_const().map(|g| tensor2(&g, d, m, device));
        Ok(t)
    }

    /// Constant diffusion as row-major `[d, m]`.
    pub fn g_const(&self) -> Option<Vec<f64>> {
        if self.sde.diffusion.is_state_dependent() {
            return None;
        }
        let g = self.sde.diffusion.eval(&vec![0.0; self.sde.dim]);
        Some(g.into_iter().flatten().collect())
    }

    /// Drift on a batch.
    pub fn drift(&self, z: Tensor<2>, u: Option<Tensor<2>>) -> Tensor<2> {
        let cols: Vec<Tensor<2>> = self
            .sde
            .drift
            .iter()
            .map(|e| column(e, &z, u.as_ref()))
            .collect();
        Tensor::cat(cols, 1)
    }

    /// Diffusion on a batch.
    pub fn diffusion(&self, z: &Tensor<2>) -> Diffusion {
        let (d, m) = (self.sde.dim, self.sde.noise_dim);
        if let Some(g) = &self.g_t {
            return Diffusion::Additive(g.clone());
        }
        let b = z.dims()[0];
        let zero = Expr::Const(0.0);
        let entries: Vec<Tensor<2>> = match &self.sde.diffusion {
            UserDiffusion::Constant(rows) => rows
                .iter()
                .flatten()
                .map(|c| Tensor::full([b, 1], *c, &z.device()))
                .collect(),
            UserDiffusion::Diagonal(diag) => (0..d)
                .flat_map(|i| (0..m).map(move |j| (i, j)))
                .map(|(i, j)| column(if i == j { &diag[i] } else { &zero }, z, None))
                .collect(),
            UserDiffusion::Entries(rows) => {
                rows.iter().flatten().map(|e| column(e, z, None)).collect()
            }
        };
        Diffusion::PerSample(Tensor::cat(entries, 1).reshape([b, d, m]))
    }
}
