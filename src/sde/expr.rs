//! User-defined stochastic differential equations, read from a TOML file.
//!
//! A user SDE has the form
//!
//! ```text
//! dz = f(z, u) dt + G(z) dW,    z ∈ R^d,  u ∈ R^p,  W ∈ R^m
//! ```
//!
//! where the drift `f` is one expression per coordinate and the diffusion `G`
//! is a `d × m` matrix (constant, diagonal or given entry by entry).
//!
//! # File format
//!
//! ```toml
//! name = "my-duffing"          # optional, defaults to the file stem
//! dim = 2                      # d, latent dimension: coordinates z1..zd (1 <= d <= 64)
//! inputs = 1                   # optional p (default 0): input channels u1..up
//! noise_dim = 2                # optional m (default d): Wiener channels
//!
//! [params]                     # optional named parameters (numbers), overridable at run time
//! alpha = 1.0
//! beta = 0.5
//! sigma = 0.3
//!
//! [drift]                      # one expression (or number) per coordinate, keys z1..zd
//! z1 = "z2"
//! z2 = "alpha*z1 - beta*z1^3 - 0.2*z2 + u1"
//!
//! [diffusion]                  # exactly ONE of `matrix`, `entries`, `diagonal`:
//! matrix = [["sigma", 0.0], [0.0, "sigma"]]
//! # constant d×m matrix: numbers or constant expressions of the parameters
//! # entries = [["sigma*(1+z1^2)", "0"], ["0", "sigma"]]
//! #   d×m expressions that may depend on z (never on u)
//! # diagonal = ["sigma", "sigma*abs(z2)"]
//! #   d expressions, constant or z-dependent; requires noise_dim = dim
//!
//! [box]                        # optional sampling box, one [lo, hi] per coordinate (all of them)
//! z1 = [-3.0, 3.0]
//! z2 = [-3.0, 3.0]
//!
//! [sim]                        # optional simulation defaults
//! dt = 0.01                    # must be > 0
//! ```
//!
//! Unknown keys (top level, `[diffusion]`, `[sim]`) are rejected so that typos
//! do not go unnoticed.
//!
//! # Expression language
//!
//! Expressions are parsed with [`evalexpr::build_operator_tree`] and lowered
//! into the small [`Expr`] AST; evalexpr never evaluates anything.
//!
//! * Variables: `z1..zd` (state), `u1..up` (inputs), parameter names,
//!   and the constants `pi` and `e`.
//! * Operators: `+ - * / ^` and unary minus, with the usual precedence
//!   (`^` binds tighter than unary minus: `-z1^2 = -(z1^2)`). All arithmetic is
//!   `f64` (`7/2 = 3.5`). Chained powers without parentheses (`a^b^c`) are
//!   rejected because evalexpr would group them as `(a^b)^c`, contrary to the
//!   mathematical convention; write `(a^b)^c` or `a^(b^c)`.
//! * Functions: `sin cos tan exp log (= ln) sqrt abs tanh sinh cosh atan
//!   sigmoid sign`, and the binary `min(a, b)`, `max(a, b)` (also with more
//!   arguments), `pow(a, b)`, `atan2(y, x)`.
//! * Rejected with a clear message: assignments, comparisons, logical
//!   operators, `%`, strings, booleans, `;`, `//` or `/*` comments, implicit
//!   multiplication (`2z1`, `alpha(z1+1)`).
//! * Size: an expression has at most [`MAX_EXPR_LEN`] bytes and [`MAX_EXPR_DEPTH`] levels of
//!   nesting (parentheses, operators, calls), so that no input can exhaust the stack.
//!
//! Parameters are substituted as constants and the tree is constant-folded,
//! so `beta*z1^3` becomes `Mul(Const(0.5), Pow(Var(0), Const(3.0)))` and the
//! integer power can be detected with [`Expr::integer_power`]. The original
//! file text is kept, so [`UserSde::with_params`] re-binds everything with
//! new parameter values.
//!
//! Errors name the file, the line (where there is one), the offending key and
//! expression, and what is wrong.
//!
//! ```rust,ignore
//! let sde = load_user_sde(Path::new("duffing.toml"))?;
//! let sde = sde.with_params(&[("beta".to_string(), 1.0)])?;
//! let f = sde.drift_point(&[0.5, 0.0], &[0.0]);
//! let g = sde.diffusion_point(&[0.5, 0.0]);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use evalexpr::{DefaultNumericTypes, Node, Operator, Value};
use serde::Deserialize;
use toml::Spanned;

/// Largest accepted `dim`, `inputs` and `noise_dim`.
pub const MAX_DIM: usize = 64;

/// Longest accepted expression, in bytes (the parser's time grows faster than linearly with
/// some inputs, e.g. long chains of unary minus).
pub const MAX_EXPR_LEN: usize = 4096;

/// Deepest accepted expression tree (a parenthesis, an operator or a function call is one
/// level; `a+b+c` is two). Lowering, folding, printing and evaluating recurse once per level,
/// so this bounds their stack use.
pub const MAX_EXPR_DEPTH: usize = 128;

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

/// Unary functions available in expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// `sin(x)`
    Sin,
    /// `cos(x)`
    Cos,
    /// `tan(x)`
    Tan,
    /// `exp(x)`
    Exp,
    /// Natural logarithm, `log(x)` or `ln(x)`.
    Log,
    /// `sqrt(x)`
    Sqrt,
    /// `abs(x)`
    Abs,
    /// `tanh(x)`
    Tanh,
    /// `sinh(x)`
    Sinh,
    /// `cosh(x)`
    Cosh,
    /// `atan(x)`
    Atan,
    /// Logistic function `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Sign: -1, 0 or 1 (NaN stays NaN).
    Sign,
}

impl Func {
    /// Every unary function.
    pub const ALL: [Func; 13] = [
        Func::Sin,
        Func::Cos,
        Func::Tan,
        Func::Exp,
        Func::Log,
        Func::Sqrt,
        Func::Abs,
        Func::Tanh,
        Func::Sinh,
        Func::Cosh,
        Func::Atan,
        Func::Sigmoid,
        Func::Sign,
    ];

    /// Name used in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Tanh => "tanh",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Atan => "atan",
            Func::Sigmoid => "sigmoid",
            Func::Sign => "sign",
        }
    }

    /// Look a function up by name (`ln` is an alias of `log`).
    pub fn from_name(name: &str) -> Option<Func> {
        if name == "ln" {
            return Some(Func::Log);
        }
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Apply the function to a scalar.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Exp => x.exp(),
            Func::Log => x.ln(),
            Func::Sqrt => x.sqrt(),
            Func::Abs => x.abs(),
            Func::Tanh => x.tanh(),
            Func::Sinh => x.sinh(),
            Func::Cosh => x.cosh(),
            Func::Atan => x.atan(),
            Func::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let ex = x.exp();
                    ex / (1.0 + ex)
                }
            }
            Func::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x // 0.0, -0.0 or NaN
                }
            }
        }
    }
}

/// Binary functions available in expressions (`pow(a, b)` lowers to [`Expr::Pow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func2 {
    /// `min(a, b)`
    Min,
    /// `max(a, b)`
    Max,
    /// `atan2(y, x)`
    Atan2,
}

impl Func2 {
    /// Name used in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Func2::Min => "min",
            Func2::Max => "max",
            Func2::Atan2 => "atan2",
        }
    }

    /// Apply the function to two scalars.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Func2::Min => a.min(b),
            Func2::Max => a.max(b),
            Func2::Atan2 => a.atan2(b),
        }
    }
}

/// `x^y`, using an exact integer power when `y` is an integer (so negative
/// bases work the way they do in generated tensor code).
fn pow_f64(x: f64, y: f64) -> f64 {
    if y.fract() == 0.0 && y.abs() <= f64::from(i32::MAX) {
        x.powi(y as i32)
    } else {
        x.powf(y)
    }
}

// ---------------------------------------------------------------------------
// Expression AST
// ---------------------------------------------------------------------------

/// Expression tree over the state `z` (0-based [`Expr::Var`]) and the inputs
/// `u` (0-based [`Expr::Input`]). Parameters are already substituted.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Const(f64),
    /// State coordinate `z_{i+1}` (0-based index).
    Var(usize),
    /// Input channel `u_{i+1}` (0-based index).
    Input(usize),
    /// `-a`
    Neg(Box<Expr>),
    /// `a + b`
    Add(Box<Expr>, Box<Expr>),
    /// `a - b`
    Sub(Box<Expr>, Box<Expr>),
    /// `a * b`
    Mul(Box<Expr>, Box<Expr>),
    /// `a / b`
    Div(Box<Expr>, Box<Expr>),
    /// `a ^ b`
    Pow(Box<Expr>, Box<Expr>),
    /// Unary function call.
    Func(Func, Box<Expr>),
    /// Binary function call.
    Func2(Func2, Box<Expr>, Box<Expr>),
}

/// What an expression may refer to; see [`Expr::parse`].
#[derive(Debug, Clone, Copy)]
pub struct ExprScope<'a> {
    /// Number of state coordinates (`z1..z{dim}`).
    pub dim: usize,
    /// Number of inputs (`u1..u{inputs}`).
    pub inputs: usize,
    /// Named parameters, substituted as constants.
    pub params: &'a [(String, f64)],
    /// Whether `z` variables may appear.
    pub allow_z: bool,
    /// Whether `u` variables may appear.
    pub allow_u: bool,
}

impl Expr {
    /// Parse, resolve and constant-fold one expression.
    pub fn parse(src: &str, scope: &ExprScope<'_>) -> Result<Expr, ExprError> {
        compile(src, scope).map_err(|message| ExprError::Syntax {
            expr: src.to_string(),
            message,
        })
    }

    /// Evaluate at state `z` and input `u`.
    ///
    /// # Panics
    /// If `z` or `u` is shorter than the largest index used.
    pub fn eval(&self, z: &[f64], u: &[f64]) -> f64 {
        match self {
            Expr::Const(c) => *c,
            Expr::Var(i) => z[*i],
            Expr::Input(i) => u[*i],
            Expr::Neg(a) => -a.eval(z, u),
            Expr::Add(a, b) => a.eval(z, u) + b.eval(z, u),
            Expr::Sub(a, b) => a.eval(z, u) - b.eval(z, u),
            Expr::Mul(a, b) => a.eval(z, u) * b.eval(z, u),
            Expr::Div(a, b) => a.eval(z, u) / b.eval(z, u),
            Expr::Pow(a, b) => pow_f64(a.eval(z, u), b.eval(z, u)),
            Expr::Func(f, a) => f.apply(a.eval(z, u)),
            Expr::Func2(f, a, b) => f.apply(a.eval(z, u), b.eval(z, u)),
        }
    }

    /// Levels of the tree (a leaf is 1), computed without recursion.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((e, d)) = stack.pop() {
            deepest = deepest.max(d);
            match e {
                Expr::Const(_) | Expr::Var(_) | Expr::Input(_) => {}
                Expr::Neg(a) | Expr::Func(_, a) => stack.push((a, d + 1)),
                Expr::Add(a, b)
                | Expr::Sub(a, b)
                | Expr::Mul(a, b)
                | Expr::Div(a, b)
                | Expr::Pow(a, b)
                | Expr::Func2(_, a, b) => {
                    stack.push((a, d + 1));
                    stack.push((b, d + 1));
                }
            }
        }
        deepest
    }

    fn any_node(&self, pred: &impl Fn(&Expr) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        match self {
            Expr::Const(_) | Expr::Var(_) | Expr::Input(_) => false,
            Expr::Neg(a) | Expr::Func(_, a) => a.any_node(pred),
            Expr::Add(a, b)
            | Expr::Sub(a, b)
            | Expr::Mul(a, b)
            | Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::Func2(_, a, b) => a.any_node(pred) || b.any_node(pred),
        }
    }

    /// True when the expression uses neither `z` nor `u`.
    pub fn is_constant(&self) -> bool {
        !self.any_node(&|e| matches!(e, Expr::Var(_) | Expr::Input(_)))
    }

    /// True when the expression uses some state coordinate.
    pub fn depends_on_z(&self) -> bool {
        self.any_node(&|e| matches!(e, Expr::Var(_)))
    }

    /// True when the expression uses some input channel.
    pub fn depends_on_u(&self) -> bool {
        self.any_node(&|e| matches!(e, Expr::Input(_)))
    }

    /// The value, if this is a [`Expr::Const`] (call after [`Expr::simplify`]).
    pub fn as_const(&self) -> Option<f64> {
        match self {
            Expr::Const(c) => Some(*c),
            _ => None,
        }
    }

    /// `Some((base, n))` when this is `base ^ n` with a constant integer `n`.
    pub fn integer_power(&self) -> Option<(&Expr, i32)> {
        match self {
            Expr::Pow(base, exp) => match **exp {
                Expr::Const(c) if c.fract() == 0.0 && c.abs() <= f64::from(i32::MAX) => {
                    Some((base, c as i32))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Constant-fold and remove exact identities (`x+0`, `x*1`, `x/1`, `x^1`,
    /// `x^0`, `--x`).
    pub fn simplify(self) -> Expr {
        use Expr::*;
        fn bin(a: Expr, b: Expr) -> (Expr, Expr) {
            (a.simplify(), b.simplify())
        }
        match self {
            Const(_) | Var(_) | Input(_) => self,
            Neg(a) => match a.simplify() {
                Const(c) => Const(-c),
                Neg(x) => *x,
                x => Neg(Box::new(x)),
            },
            Add(a, b) => match bin(*a, *b) {
                (Const(x), Const(y)) => Const(x + y),
                (Const(0.0), e) | (e, Const(0.0)) => e,
                (a, b) => Add(Box::new(a), Box::new(b)),
            },
            Sub(a, b) => match bin(*a, *b) {
                (Const(x), Const(y)) => Const(x - y),
                (e, Const(0.0)) => e,
                (Const(0.0), e) => Neg(Box::new(e)).simplify(),
                (a, b) => Sub(Box::new(a), Box::new(b)),
            },
            Mul(a, b) => match bin(*a, *b) {
                (Const(x), Const(y)) => Const(x * y),
                (Const(1.0), e) | (e, Const(1.0)) => e,
                (Const(-1.0), e) | (e, Const(-1.0)) => Neg(Box::new(e)).simplify(),
                (a, b) => Mul(Box::new(a), Box::new(b)),
            },
            Div(a, b) => match bin(*a, *b) {
                (Const(x), Const(y)) => Const(x / y),
                (e, Const(1.0)) => e,
                (a, b) => Div(Box::new(a), Box::new(b)),
            },
            Pow(a, b) => match bin(*a, *b) {
                (Const(x), Const(y)) => Const(pow_f64(x, y)),
                (e, Const(1.0)) => e,
                (_, Const(0.0)) => Const(1.0),
                (a, b) => Pow(Box::new(a), Box::new(b)),
            },
            Func(f, a) => match a.simplify() {
                Const(c) => Const(f.apply(c)),
                x => Func(f, Box::new(x)),
            },
            Func2(f, a, b) => match bin(*a, *b) {
                (Const(x), Const(y)) => Const(f.apply(x, y)),
                (a, b) => Func2(f, Box::new(a), Box::new(b)),
            },
        }
    }

    /// Binding strength for printing: larger binds tighter.
    fn prec(&self) -> u8 {
        match self {
            Expr::Add(..) | Expr::Sub(..) => 1,
            Expr::Mul(..) | Expr::Div(..) => 2,
            Expr::Neg(_) => 3,
            Expr::Const(c) if c.is_sign_negative() => 3,
            Expr::Pow(..) => 4,
            _ => 5,
        }
    }
}

/// Prints an expression in the input syntax; parsing the output gives back
/// the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn side(f: &mut fmt::Formatter<'_>, e: &Expr, paren: bool) -> fmt::Result {
            if paren {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        let p = self.prec();
        let infix = |f: &mut fmt::Formatter<'_>, a: &Expr, op: &str, b: &Expr| {
            side(f, a, a.prec() < p)?;
            write!(f, " {op} ")?;
            side(f, b, b.prec() <= p)
        };
        match self {
            Expr::Const(c) => write!(f, "{c:?}"),
            Expr::Var(i) => write!(f, "z{}", i + 1),
            Expr::Input(i) => write!(f, "u{}", i + 1),
            Expr::Neg(a) => {
                write!(f, "-")?;
                side(f, a, a.prec() <= 3)
            }
            Expr::Add(a, b) => infix(f, a, "+", b),
            Expr::Sub(a, b) => infix(f, a, "-", b),
            Expr::Mul(a, b) => infix(f, a, "*", b),
            Expr::Div(a, b) => infix(f, a, "/", b),
            Expr::Pow(a, b) => {
                side(f, a, a.prec() <= 4)?;
                write!(f, "^")?;
                side(f, b, b.prec() <= 4)
            }
            Expr::Func(func, a) => write!(f, "{}({a})", func.name()),
            Expr::Func2(func, a, b) => write!(f, "{}({a}, {b})", func.name()),
        }
    }
}

// ---------------------------------------------------------------------------
// Lowering evalexpr trees
// ---------------------------------------------------------------------------

type EvNode = Node<DefaultNumericTypes>;

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `prefix<digits>` → the number.
fn indexed(name: &str, prefix: char) -> Option<usize> {
    let rest = name.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: only overflow can fail, which is out of range anyway.
    Some(rest.parse::<usize>().unwrap_or(usize::MAX))
}

fn range_text(prefix: char, n: usize) -> String {
    match n {
        0 => format!("no {prefix} variables"),
        1 => format!("{prefix}1"),
        _ => format!("{prefix}1..{prefix}{n}"),
    }
}

fn function_list() -> String {
    let mut names: Vec<&str> = Func::ALL.iter().map(|f| f.name()).collect();
    names.extend(["ln", "min", "max", "pow", "atan2"]);
    names.join(", ")
}

/// Levels of an evalexpr tree, computed without recursion.
fn node_depth(root: &EvNode) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((node, d)) = stack.pop() {
        deepest = deepest.max(d);
        stack.extend(node.children().iter().map(|c| (c, d + 1)));
    }
    deepest
}

fn too_deep(depth: usize) -> String {
    format!(
        "expression nests too deeply ({depth} levels of parentheses, operators and calls; \
         at most {MAX_EXPR_DEPTH})"
    )
}

fn compile(src: &str, scope: &ExprScope<'_>) -> Result<Expr, String> {
    if src.trim().is_empty() {
        return Err("empty expression".to_string());
    }
    if src.len() > MAX_EXPR_LEN {
        return Err(format!(
            "expression is {} bytes long; at most {MAX_EXPR_LEN} are accepted",
            src.len()
        ));
    }
    if src.contains("//") || src.contains("/*") {
        return Err(
            "`//` and `/*` are not allowed (the parser would treat them as comments); \
             use a single `/` for division"
                .to_string(),
        );
    }
    let tree = evalexpr::build_operator_tree::<DefaultNumericTypes>(src)
        .map_err(|e| format!("parse error: {e}"))?;
    let depth = node_depth(&tree);
    if depth > MAX_EXPR_DEPTH {
        return Err(too_deep(depth));
    }
    let expr = lower(&tree, scope)?;
    // `min`/`max` with many arguments lower to a chain deeper than the call.
    let depth = expr.depth();
    if depth > MAX_EXPR_DEPTH {
        return Err(too_deep(depth));
    }
    let expr = expr.simplify();
    if expr.any_node(&|e| matches!(e, Expr::Const(c) if !c.is_finite())) {
        let bad = if let Expr::Const(c) = expr {
            format!("evaluates to {c}")
        } else {
            "contains a constant part that evaluates to a non-finite value".to_string()
        };
        return Err(format!(
            "expression {bad} (check parameter values, divisions by zero and function domains)"
        ));
    }
    Ok(expr)
}

fn describe_operator(op: &Operator<DefaultNumericTypes>) -> String {
    op.to_string().trim().to_string()
}

fn lower(node: &EvNode, scope: &ExprScope<'_>) -> Result<Expr, String> {
    let ch = node.children();
    let op = node.operator();
    let binary = |make: fn(Box<Expr>, Box<Expr>) -> Expr| -> Result<Expr, String> {
        match ch {
            [a, b] => Ok(make(Box::new(lower(a, scope)?), Box::new(lower(b, scope)?))),
            _ => Err(format!(
                "incomplete expression: operator `{}` needs two operands",
                describe_operator(op)
            )),
        }
    };
    match op {
        Operator::RootNode => match ch {
            [] => Err("empty expression or empty parentheses `()`".to_string()),
            [c] => lower(c, scope),
            _ => Err("malformed expression".to_string()),
        },
        Operator::Add => binary(Expr::Add),
        Operator::Sub => binary(Expr::Sub),
        Operator::Mul => binary(Expr::Mul),
        Operator::Div => binary(Expr::Div),
        Operator::Exp => {
            if ch.iter().any(|c| matches!(c.operator(), Operator::Exp)) {
                return Err(
                    "chained power `a^b^c` is ambiguous (the parser groups it as \
                            (a^b)^c); add parentheses: `(a^b)^c` or `a^(b^c)`"
                        .to_string(),
                );
            }
            binary(Expr::Pow)
        }
        Operator::Neg => match ch {
            [a] => Ok(Expr::Neg(Box::new(lower(a, scope)?))),
            _ => Err("incomplete expression: unary `-` needs an operand".to_string()),
        },
        Operator::Mod => Err("the modulo operator `%` is not supported".to_string()),
        Operator::Eq
        | Operator::Neq
        | Operator::Gt
        | Operator::Lt
        | Operator::Geq
        | Operator::Leq => Err(format!(
            "comparison operator `{}` is not allowed; an expression must be a number",
            describe_operator(op)
        )),
        Operator::And | Operator::Or | Operator::Not => Err(format!(
            "logical operator `{}` is not allowed; an expression must be a number",
            describe_operator(op)
        )),
        Operator::Assign
        | Operator::AddAssign
        | Operator::SubAssign
        | Operator::MulAssign
        | Operator::DivAssign
        | Operator::ModAssign
        | Operator::ExpAssign
        | Operator::AndAssign
        | Operator::OrAssign => Err(format!(
            "assignment `{}` is not allowed; write only the right-hand side \
             (the TOML key already names the target)",
            describe_operator(op)
        )),
        Operator::VariableIdentifierWrite { identifier } => Err(format!(
            "assignment to `{identifier}` is not allowed; write only the right-hand side"
        )),
        Operator::Tuple => {
            Err("unexpected `,`: commas are only allowed between function arguments".to_string())
        }
        Operator::Chain => Err("`;` is not allowed: give a single expression".to_string()),
        Operator::Const { value } => match value {
            Value::Int(i) => Ok(Expr::Const(*i as f64)),
            Value::Float(x) => Ok(Expr::Const(*x)),
            Value::Boolean(b) => Err(format!(
                "boolean `{b}` is not allowed; an expression must be a number"
            )),
            Value::String(s) => Err(format!(
                "string literal \"{s}\" is not allowed inside an expression \
                 (quote the whole expression once in TOML)"
            )),
            Value::Tuple(_) => Err("tuple values are not allowed".to_string()),
            Value::Empty => Err("empty value `()` is not allowed".to_string()),
        },
        Operator::VariableIdentifierRead { identifier } => resolve_identifier(identifier, scope),
        Operator::FunctionIdentifier { identifier } => lower_call(identifier, ch, scope),
    }
}

fn resolve_identifier(name: &str, scope: &ExprScope<'_>) -> Result<Expr, String> {
    if !is_identifier(name) {
        if name.starts_with(|c: char| c.is_ascii_digit())
            && name.contains(|c: char| c.is_ascii_alphabetic())
        {
            return Err(format!(
                "`{name}`: implicit multiplication is not supported, write e.g. `2*z1`"
            ));
        }
        return Err(format!("invalid token `{name}`"));
    }
    if let Some(k) = indexed(name, 'z') {
        if !scope.allow_z {
            return Err(format!(
                "state variable `{name}` is not allowed here (constant expected)"
            ));
        }
        if k == 0 || k > scope.dim {
            return Err(format!(
                "unknown variable `{name}`: dim = {} so the state variables are {} (1-based)",
                scope.dim,
                range_text('z', scope.dim)
            ));
        }
        return Ok(Expr::Var(k - 1));
    }
    if let Some(k) = indexed(name, 'u') {
        if !scope.allow_u {
            return Err(format!("input `{name}` is not allowed here"));
        }
        if k == 0 || k > scope.inputs {
            return Err(format!(
                "unknown variable `{name}`: inputs = {} so the inputs are {} \
                 (declare `inputs = N` at the top level)",
                scope.inputs,
                range_text('u', scope.inputs)
            ));
        }
        return Ok(Expr::Input(k - 1));
    }
    if let Some((_, v)) = scope.params.iter().find(|(p, _)| p == name) {
        return Ok(Expr::Const(*v));
    }
    match name {
        "pi" => return Ok(Expr::Const(std::f64::consts::PI)),
        "e" => return Ok(Expr::Const(std::f64::consts::E)),
        _ => {}
    }
    if is_function_name(name) {
        return Err(format!(
            "`{name}` is a function; call it with parentheses, e.g. `{name}(z1)`"
        ));
    }
    let params: Vec<&str> = scope.params.iter().map(|(p, _)| p.as_str()).collect();
    Err(format!(
        "unknown variable `{name}` (known: {}{}, parameters: [{}], constants: pi, e)",
        if scope.allow_z {
            range_text('z', scope.dim)
        } else {
            "no state variables".to_string()
        },
        if scope.allow_u && scope.inputs > 0 {
            format!(", {}", range_text('u', scope.inputs))
        } else {
            String::new()
        },
        params.join(", ")
    ))
}

fn is_function_name(name: &str) -> bool {
    Func::from_name(name).is_some() || matches!(name, "min" | "max" | "pow" | "atan2")
}

fn lower_call(name: &str, ch: &[EvNode], scope: &ExprScope<'_>) -> Result<Expr, String> {
    if !is_identifier(name) {
        return Err(format!("invalid token `{name}`"));
    }
    let [arg] = ch else {
        return Err(format!("malformed call of `{name}`"));
    };
    let parenthesised = matches!(arg.operator(), Operator::RootNode);
    if !is_function_name(name) {
        let is_value = indexed(name, 'z').is_some()
            || indexed(name, 'u').is_some()
            || scope.params.iter().any(|(p, _)| p == name)
            || matches!(name, "pi" | "e");
        return Err(if is_value && parenthesised {
            format!(
                "`{name}` is not a function: implicit multiplication is not supported, \
                 write `{name}*(...)`"
            )
        } else if is_value {
            // Report a bad token on the right first (e.g. `z1 $ 2`).
            lower(arg, scope)?;
            format!("missing operator after `{name}` (two values next to each other)")
        } else {
            format!("unknown function `{name}` (supported: {})", function_list())
        });
    }
    if !parenthesised {
        return Err(format!(
            "function `{name}` must be called with parentheses, e.g. `{name}(z1)`"
        ));
    }
    let args: Vec<Expr> = match arg.children() {
        [] => Vec::new(),
        [inner] if matches!(inner.operator(), Operator::Tuple) => inner
            .children()
            .iter()
            .map(|a| lower(a, scope))
            .collect::<Result<_, _>>()?,
        _ => vec![lower(arg, scope)?],
    };
    let n = args.len();
    let arity = |want: &str| format!("function `{name}` takes {want}, got {n}");
    if let Some(f) = Func::from_name(name) {
        let [a] = <[Expr; 1]>::try_from(args).map_err(|_| arity("1 argument"))?;
        return Ok(Expr::Func(f, Box::new(a)));
    }
    match name {
        "min" | "max" => {
            let f = if name == "min" {
                Func2::Min
            } else {
                Func2::Max
            };
            if n < 2 {
                return Err(arity("at least 2 arguments"));
            }
            let mut it = args.into_iter();
            let first = it.next().ok_or_else(|| arity("at least 2 arguments"))?;
            Ok(it.fold(first, |acc, x| Expr::Func2(f, Box::new(acc), Box::new(x))))
        }
        _ => {
            let [a, b] = <[Expr; 2]>::try_from(args).map_err(|_| arity("2 arguments"))?;
            Ok(if name == "pow" {
                Expr::Pow(Box::new(a), Box::new(b))
            } else {
                Expr::Func2(Func2::Atan2, Box::new(a), Box::new(b))
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A file, and a 1-based line in it when known. Displays as `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLoc {
    /// The SDE file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: Option<usize>,
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Everything that can go wrong while loading or re-binding a user SDE.
#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    /// The file could not be read.
    #[error("{}: cannot read SDE file: {error}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// TOML syntax error, or a value of the wrong TOML type / an unknown key
    /// (toml's message carries line and column).
    #[error("{}: {message}", file.display())]
    Toml {
        /// The file.
        file: PathBuf,
        /// toml's message.
        message: String,
    },
    /// A structural problem in the file (missing key, bad shape, bad value).
    #[error("{loc}: {message}")]
    Spec {
        /// Where.
        loc: SourceLoc,
        /// What is wrong.
        message: String,
    },
    /// A bad expression in the file.
    #[error("{loc}: in {key} = \"{expr}\": {message}")]
    Expr {
        /// Where.
        loc: SourceLoc,
        /// Which entry, e.g. `drift.z2` or `diffusion.entries[0][1]`.
        key: String,
        /// The expression as written.
        expr: String,
        /// What is wrong.
        message: String,
    },
    /// A bad run-time parameter override.
    #[error("{}: parameter override `{name}`: {message}", file.display())]
    Override {
        /// The SDE file.
        file: PathBuf,
        /// The parameter name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A bad `name=value` override string, see [`parse_param_override`].
    #[error("parameter override \"{text}\": {message}")]
    OverrideSyntax {
        /// The text given.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// A bad stand-alone expression, see [`Expr::parse`].
    #[error("in expression \"{expr}\": {message}")]
    Syntax {
        /// The expression.
        expr: String,
        /// What is wrong.
        message: String,
    },
}

// ---------------------------------------------------------------------------
// User SDE
// ---------------------------------------------------------------------------

/// Diffusion matrix `G` (`d × m`).
#[derive(Debug, Clone, PartialEq)]
pub enum UserDiffusion {
    /// Constant `d × m` matrix (additive noise).
    Constant(Vec<Vec<f64>>),
    /// `d` diagonal entries (`m = d`), constant or state-dependent.
    Diagonal(Vec<Expr>),
    /// `d × m` entries, constant or state-dependent.
    Entries(Vec<Vec<Expr>>),
}

impl UserDiffusion {
    /// True when some entry depends on the state (multiplicative noise).
    pub fn is_state_dependent(&self) -> bool {
        match self {
            UserDiffusion::Constant(_) => false,
            UserDiffusion::Diagonal(d) => d.iter().any(Expr::depends_on_z),
            UserDiffusion::Entries(rows) => rows.iter().flatten().any(Expr::depends_on_z),
        }
    }

    /// The full `d × m` matrix at state `z`.
    pub fn eval(&self, z: &[f64]) -> Vec<Vec<f64>> {
        match self {
            UserDiffusion::Constant(m) => m.clone(),
            UserDiffusion::Diagonal(d) => {
                let n = d.len();
                (0..n)
                    .map(|i| {
                        let mut row = vec![0.0; n];
                        row[i] = d[i].eval(z, &[]);
                        row
                    })
                    .collect()
            }
            UserDiffusion::Entries(rows) => rows
                .iter()
                .map(|r| r.iter().map(|e| e.eval(z, &[])).collect())
                .collect(),
        }
    }
}

/// A user-defined SDE, with parameters bound.
#[derive(Debug, Clone)]
pub struct UserSde {
    /// `name`, or the file stem.
    pub name: String,
    /// Latent dimension `d`.
    pub dim: usize,
    /// Number of inputs `p`.
    pub inputs: usize,
    /// Number of Wiener channels `m`.
    pub noise_dim: usize,
    /// Parameter values in file order (after overrides).
    pub params: Vec<(String, f64)>,
    /// Drift, one expression per coordinate.
    pub drift: Vec<Expr>,
    /// Diffusion.
    pub diffusion: UserDiffusion,
    /// Sampling box `[lo, hi]` per coordinate.
    pub bbox: Option<Vec<(f64, f64)>>,
    /// Default time step.
    pub dt: Option<f64>,
    /// The file it came from.
    pub source: PathBuf,
    /// The file text, kept for re-binding with other parameter values.
    text: String,
}

impl UserSde {
    /// What `attractor sde check` prints: dimensions, parameters, drift and diffusion, one
    /// line each.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{}: dim {}, inputs {}, noise_dim {}\n",
            self.name, self.dim, self.inputs, self.noise_dim
        );
        for (k, v) in &self.params {
            out += &format!("  param {k} = {v}\n");
        }
        for (i, e) in self.drift.iter().enumerate() {
            out += &format!("  dz{}/dt = {e}\n", i + 1);
        }
        out + &format!("  diffusion: {:?}\n", self.diffusion)
    }

    /// Re-bind with some parameters overridden (later entries win). Unknown
    /// names and non-finite values are errors.
    pub fn with_params(&self, overrides: &[(String, f64)]) -> Result<UserSde, ExprError> {
        let mut all = self.params.clone();
        all.extend_from_slice(overrides);
        build(&self.text, &self.source, &all)
    }

    /// Value of a parameter.
    pub fn param(&self, name: &str) -> Option<f64> {
        self.params.iter().find(|(p, _)| p == name).map(|(_, v)| *v)
    }

    /// Drift `f(z, u)` at one point.
    ///
    /// # Panics
    /// If `z` has fewer than `dim` or `u` fewer than `inputs` entries.
    pub fn drift_point(&self, z: &[f64], u: &[f64]) -> Vec<f64> {
        self.drift.iter().map(|e| e.eval(z, u)).collect()
    }

    /// Diffusion `G(z)` at one point, `dim × noise_dim`.
    pub fn diffusion_point(&self, z: &[f64]) -> Vec<Vec<f64>> {
        self.diffusion.eval(z)
    }

    /// True when the noise is additive (diffusion independent of `z`).
    pub fn is_additive_noise(&self) -> bool {
        !self.diffusion.is_state_dependent()
    }
}

/// Parse a command-line override `name=value` (e.g. `beta=0.5`,
/// `sigma=-1e-3`); the value must be a finite number. Pass the results to
/// [`UserSde::with_params`].
pub fn parse_param_override(text: &str) -> Result<(String, f64), ExprError> {
    let err = |message: &str| ExprError::OverrideSyntax {
        text: text.to_string(),
        message: message.to_string(),
    };
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| err("expected `name=value`"))?;
    let name = name.trim();
    if !is_identifier(name) {
        return Err(err("invalid parameter name"));
    }
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| err("value is not a number"))?;
    if !value.is_finite() {
        return Err(err("value must be finite"));
    }
    Ok((name.to_string(), value))
}

/// Read and parse a user SDE file.
pub fn load_user_sde(path: &Path) -> Result<UserSde, ExprError> {
    let text = std::fs::read_to_string(path).map_err(|error| ExprError::Io {
        file: path.to_path_buf(),
        error,
    })?;
    parse_user_sde(&text, path)
}

/// Parse a user SDE from TOML text; `source` is used in error messages and
/// as the default name.
pub fn parse_user_sde(text: &str, source: &Path) -> Result<UserSde, ExprError> {
    build(text, source, &[])
}

// ---------------------------------------------------------------------------
// Raw TOML layout
// ---------------------------------------------------------------------------

type SpannedTable = Spanned<BTreeMap<Spanned<String>, Spanned<toml::Value>>>;
type SpannedMatrix = Spanned<Vec<Spanned<Vec<Spanned<toml::Value>>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<Spanned<String>>,
    dim: Option<Spanned<i64>>,
    inputs: Option<Spanned<i64>>,
    noise_dim: Option<Spanned<i64>>,
    params: Option<SpannedTable>,
    drift: Option<SpannedTable>,
    diffusion: Option<Spanned<RawDiffusion>>,
    #[serde(rename = "box")]
    bbox: Option<SpannedTable>,
    sim: Option<Spanned<RawSim>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiffusion {
    matrix: Option<SpannedMatrix>,
    entries: Option<SpannedMatrix>,
    diagonal: Option<Spanned<Vec<Spanned<toml::Value>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSim {
    dt: Option<Spanned<f64>>,
}

/// Entries of a table in file order.
fn in_file_order(
    table: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
) -> Vec<(Spanned<String>, Spanned<toml::Value>)> {
    let mut v: Vec<_> = table.into_iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

struct Ctx<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Ctx<'_> {
    fn loc(&self, span: Option<Range<usize>>) -> SourceLoc {
        SourceLoc {
            file: self.file.to_path_buf(),
            line: span.map(|s| {
                let end = s.start.min(self.text.len());
                1 + self.text.as_bytes()[..end]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
            }),
        }
    }

    fn spec(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ExprError {
        ExprError::Spec {
            loc: self.loc(span),
            message: message.into(),
        }
    }

    fn expr(
        &self,
        span: Range<usize>,
        key: &str,
        expr: &str,
        message: impl Into<String>,
    ) -> ExprError {
        ExprError::Expr {
            loc: self.loc(Some(span)),
            key: key.to_string(),
            expr: expr.to_string(),
            message: message.into(),
        }
    }

    /// A count in `lo..=MAX_DIM`.
    fn count(&self, v: &Spanned<i64>, key: &str, lo: i64) -> Result<usize, ExprError> {
        let n = *v.get_ref();
        if n < lo || n > MAX_DIM as i64 {
            return Err(self.spec(
                Some(v.span()),
                format!("`{key} = {n}` is out of range: it must be between {lo} and {MAX_DIM}"),
            ));
        }
        Ok(n as usize)
    }

    /// Compile a TOML value that is an expression string or a number.
    fn value_expr(
        &self,
        v: &Spanned<toml::Value>,
        key: &str,
        scope: &ExprScope<'_>,
    ) -> Result<Expr, ExprError> {
        match v.get_ref() {
            toml::Value::String(s) => compile(s, scope).map_err(|m| self.expr(v.span(), key, s, m)),
            toml::Value::Integer(i) => Ok(Expr::Const(*i as f64)),
            toml::Value::Float(x) if x.is_finite() => Ok(Expr::Const(*x)),
            toml::Value::Float(x) => {
                Err(self.spec(Some(v.span()), format!("{key} = {x}: value must be finite")))
            }
            other => Err(self.spec(
                Some(v.span()),
                format!(
                    "{key} must be an expression string or a number, got a {}",
                    other.type_str()
                ),
            )),
        }
    }
}

/// Parse `key` as `z<k>` with `1 <= k <= dim`, returning `k - 1`.
fn coordinate_key(
    ctx: &Ctx<'_>,
    key: &Spanned<String>,
    table: &str,
    dim: usize,
) -> Result<usize, ExprError> {
    let name = key.get_ref();
    match indexed(name, 'z') {
        Some(k) if (1..=dim).contains(&k) => Ok(k - 1),
        Some(_) => Err(ctx.spec(
            Some(key.span()),
            format!(
                "extra {table} key `{name}`: dim = {dim}, so [{table}] has keys {}",
                range_text('z', dim)
            ),
        )),
        None => Err(ctx.spec(
            Some(key.span()),
            format!(
                "invalid {table} key `{name}`: expected {}",
                range_text('z', dim)
            ),
        )),
    }
}

fn validate_param_name(name: &str) -> Result<(), String> {
    if !is_identifier(name) {
        return Err(format!(
            "invalid parameter name `{name}`: use letters, digits and `_`, not starting with a digit"
        ));
    }
    if indexed(name, 'z').is_some() || indexed(name, 'u').is_some() {
        return Err(format!(
            "parameter name `{name}` clashes with a state/input variable name"
        ));
    }
    if matches!(name, "pi" | "e" | "true" | "false") || is_function_name(name) {
        return Err(format!(
            "parameter name `{name}` clashes with a built-in constant or function"
        ));
    }
    Ok(())
}

/// The d×m rows of a `matrix` / `entries` table, compiled and shape-checked.
type ExprRows = Vec<Vec<Expr>>;

impl Ctx<'_> {
    fn params(
        &self,
        table: Option<SpannedTable>,
        overrides: &[(String, f64)],
    ) -> Result<Vec<(String, f64)>, ExprError> {
        let mut params: Vec<(String, f64)> = Vec::new();
        for (key, value) in table
            .map(|t| in_file_order(t.into_inner()))
            .unwrap_or_default()
        {
            let pname = key.get_ref().clone();
            validate_param_name(&pname).map_err(|m| self.spec(Some(key.span()), m))?;
            let v = match value.get_ref() {
                toml::Value::Integer(i) => *i as f64,
                toml::Value::Float(x) => *x,
                other => {
                    return Err(self.spec(
                        Some(value.span()),
                        format!(
                            "parameter `{pname}` must be a number, got a {} ({other})",
                            other.type_str()
                        ),
                    ));
                }
            };
            if !v.is_finite() {
                return Err(self.spec(
                    Some(value.span()),
                    format!("parameter `{pname}` = {v} is not finite"),
                ));
            }
            params.push((pname, v));
        }
        for (oname, ov) in overrides {
            let bad = |message: String| ExprError::Override {
                file: self.file.to_path_buf(),
                name: oname.clone(),
                message,
            };
            let known: Vec<String> = params.iter().map(|(p, _)| p.clone()).collect();
            let Some(slot) = params.iter_mut().find(|(p, _)| p == oname) else {
                return Err(bad(format!(
                    "no such parameter (known: [{}])",
                    known.join(", ")
                )));
            };
            if !ov.is_finite() {
                return Err(bad(format!("value {ov} is not finite")));
            }
            slot.1 = *ov;
        }
        Ok(params)
    }

    fn drift(
        &self,
        table: Option<SpannedTable>,
        scope: &ExprScope<'_>,
    ) -> Result<Vec<Expr>, ExprError> {
        let dim = scope.dim;
        let Some(table) = table else {
            return Err(self.spec(
                None,
                format!(
                    "missing [drift] table (one expression per coordinate {})",
                    range_text('z', dim)
                ),
            ));
        };
        let span = table.span();
        let mut drift: Vec<Option<Expr>> = vec![None; dim];
        for (key, value) in in_file_order(table.into_inner()) {
            let i = coordinate_key(self, &key, "drift", dim)?;
            drift[i] = Some(self.value_expr(&value, &format!("drift.{}", key.get_ref()), scope)?);
        }
        drift
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                e.ok_or_else(|| {
                    self.spec(
                        Some(span.clone()),
                        format!(
                            "missing drift for `z{}`: [drift] needs one entry per coordinate {}",
                            i + 1,
                            range_text('z', dim)
                        ),
                    )
                })
            })
            .collect()
    }

    /// Compile one diffusion entry; it must not depend on the inputs.
    fn diffusion_entry(
        &self,
        v: &Spanned<toml::Value>,
        key: &str,
        scope: &ExprScope<'_>,
    ) -> Result<Expr, ExprError> {
        let e = self.value_expr(v, key, scope)?;
        if e.depends_on_u() {
            let src = v.get_ref().as_str().unwrap_or_default();
            return Err(self.expr(
                v.span(),
                key,
                src,
                "the diffusion must not depend on the inputs u (only on the state z)",
            ));
        }
        Ok(e)
    }

    fn diffusion(
        &self,
        diff: Option<Spanned<RawDiffusion>>,
        scope: &ExprScope<'_>,
        noise_dim: usize,
    ) -> Result<UserDiffusion, ExprError> {
        let dim = scope.dim;
        let Some(diff) = diff else {
            return Err(self.spec(
                None,
                "missing [diffusion] table (give `matrix`, `entries` or `diagonal`; \
                 e.g. `diagonal = [0.0, ...]` for no noise)",
            ));
        };
        let span = diff.span();
        match diff.into_inner() {
            RawDiffusion {
                diagonal: Some(diag),
                matrix: None,
                entries: None,
            } => {
                if noise_dim != dim {
                    return Err(self.spec(
                        Some(diag.span()),
                        format!(
                            "diagonal diffusion requires noise_dim = dim (= {dim}), but \
                             noise_dim = {noise_dim}; use `matrix` or `entries` for a \
                             {dim}×{noise_dim} diffusion"
                        ),
                    ));
                }
                if diag.get_ref().len() != dim {
                    return Err(self.spec(
                        Some(diag.span()),
                        format!(
                            "diffusion `diagonal` has {} entries, expected dim = {dim}",
                            diag.get_ref().len()
                        ),
                    ));
                }
                diag.get_ref()
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        self.diffusion_entry(v, &format!("diffusion.diagonal[{i}]"), scope)
                    })
                    .collect::<Result<_, _>>()
                    .map(UserDiffusion::Diagonal)
            }
            RawDiffusion {
                matrix: Some(rows),
                entries: None,
                diagonal: None,
            } => {
                let rows = self.rows(rows, "matrix", scope, noise_dim)?;
                Ok(UserDiffusion::Constant(
                    rows.iter()
                        .map(|row| row.iter().map(|e| e.eval(&[], &[])).collect())
                        .collect(),
                ))
            }
            RawDiffusion {
                entries: Some(rows),
                matrix: None,
                diagonal: None,
            } => self
                .rows(rows, "entries", scope, noise_dim)
                .map(UserDiffusion::Entries),
            RawDiffusion {
                matrix,
                entries,
                diagonal,
            } => {
                let given = [matrix.is_some(), entries.is_some(), diagonal.is_some()]
                    .iter()
                    .filter(|&&b| b)
                    .count();
                Err(self.spec(
                    Some(span),
                    format!(
                        "[diffusion] must give exactly one of `matrix`, `entries`, `diagonal` \
                         (found {given})"
                    ),
                ))
            }
        }
    }

    /// Shape-check and compile `matrix` (entries must be constant) or `entries`.
    fn rows(
        &self,
        rows: SpannedMatrix,
        what: &str,
        scope: &ExprScope<'_>,
        noise_dim: usize,
    ) -> Result<ExprRows, ExprError> {
        let dim = scope.dim;
        if rows.get_ref().len() != dim {
            return Err(self.spec(
                Some(rows.span()),
                format!(
                    "diffusion `{what}` has wrong shape: {} rows, expected dim = {dim} rows \
                     of noise_dim = {noise_dim} entries",
                    rows.get_ref().len()
                ),
            ));
        }
        let mut out: ExprRows = Vec::with_capacity(dim);
        for (r, row) in rows.get_ref().iter().enumerate() {
            if row.get_ref().len() != noise_dim {
                return Err(self.spec(
                    Some(row.span()),
                    format!(
                        "diffusion `{what}` has wrong shape: row {} has {} entries, expected \
                         noise_dim = {noise_dim} (set `noise_dim` at the top level for a \
                         non-square diffusion)",
                        r + 1,
                        row.get_ref().len()
                    ),
                ));
            }
            let mut out_row = Vec::with_capacity(noise_dim);
            for (c, v) in row.get_ref().iter().enumerate() {
                let key = format!("diffusion.{what}[{r}][{c}]");
                let e = self.diffusion_entry(v, &key, scope)?;
                if what == "matrix" && !e.is_constant() {
                    let src = v.get_ref().as_str().unwrap_or_default();
                    return Err(self.expr(
                        v.span(),
                        &key,
                        src,
                        "`matrix` entries must be constant (numbers or parameter expressions); \
                         use `entries = [[...]]` for a state-dependent diffusion",
                    ));
                }
                out_row.push(e);
            }
            out.push(out_row);
        }
        Ok(out)
    }

    fn bbox(
        &self,
        table: Option<SpannedTable>,
        dim: usize,
    ) -> Result<Option<Vec<(f64, f64)>>, ExprError> {
        let Some(table) = table else {
            return Ok(None);
        };
        let span = table.span();
        let mut b: Vec<Option<(f64, f64)>> = vec![None; dim];
        for (key, value) in in_file_order(table.into_inner()) {
            let i = coordinate_key(self, &key, "box", dim)?;
            let bad = |m: String| self.spec(Some(value.span()), m);
            let k = key.get_ref();
            let num = |v: &toml::Value| match v {
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(x) => Some(*x),
                _ => None,
            };
            let (lo, hi) = match value.get_ref() {
                toml::Value::Array(a) if a.len() == 2 => match (num(&a[0]), num(&a[1])) {
                    (Some(lo), Some(hi)) => (lo, hi),
                    _ => return Err(bad(format!("box.{k} must be two numbers [lo, hi]"))),
                },
                _ => return Err(bad(format!("box.{k} must be an array [lo, hi]"))),
            };
            if !lo.is_finite() || !hi.is_finite() {
                return Err(bad(format!("box.{k} = [{lo}, {hi}] must be finite")));
            }
            if lo >= hi {
                return Err(bad(format!(
                    "box.{k} = [{lo}, {hi}]: lo must be smaller than hi"
                )));
            }
            b[i] = Some((lo, hi));
        }
        b.into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.ok_or_else(|| {
                    self.spec(
                        Some(span.clone()),
                        format!(
                            "[box] is missing `z{}`: give [lo, hi] for every coordinate",
                            i + 1
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn dt(&self, sim: Option<Spanned<RawSim>>) -> Result<Option<f64>, ExprError> {
        let Some(dt) = sim.and_then(|s| s.into_inner().dt) else {
            return Ok(None);
        };
        let v = *dt.get_ref();
        if !v.is_finite() || v <= 0.0 {
            return Err(self.spec(
                Some(dt.span()),
                format!("sim.dt = {v}: the time step must be a positive finite number"),
            ));
        }
        Ok(Some(v))
    }
}

fn build(text: &str, source: &Path, overrides: &[(String, f64)]) -> Result<UserSde, ExprError> {
    let ctx = Ctx { text, file: source };
    let raw: RawFile = toml::from_str(text).map_err(|e| ExprError::Toml {
        file: source.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;

    let dim = match &raw.dim {
        Some(v) => ctx.count(v, "dim", 1)?,
        None => {
            return Err(ctx.spec(
                None,
                "missing required key `dim` (the latent dimension, e.g. `dim = 2`)",
            ));
        }
    };
    let inputs = match &raw.inputs {
        Some(v) => ctx.count(v, "inputs", 0)?,
        None => 0,
    };
    let noise_dim = match &raw.noise_dim {
        Some(v) => ctx.count(v, "noise_dim", 1)?,
        None => dim,
    };
    let name = match raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(ctx.spec(Some(n.span()), "`name` must not be empty"));
        }
        Some(n) => n.into_inner(),
        None => source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "user-sde".to_string()),
    };

    let params = ctx.params(raw.params, overrides)?;
    let scope = ExprScope {
        dim,
        inputs,
        params: &params,
        allow_z: true,
        allow_u: true,
    };
    let drift = ctx.drift(raw.drift, &scope)?;
    let diffusion = ctx.diffusion(raw.diffusion, &scope, noise_dim)?;
    let bbox = ctx.bbox(raw.bbox, dim)?;
    let dt = ctx.dt(raw.sim)?;

    Ok(UserSde {
        name,
        dim,
        inputs,
        noise_dim,
        params,
        drift,
        diffusion,
        bbox,
        dt,
        source: source.to_path_buf(),
        text: text.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "test_sde.toml";

    const DUFFING: &str = r#"name = "my-duffing"
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

[box]
z1 = [-3.0, 3.0]
z2 = [-3.0, 3.0]

[sim]
dt = 0.01
"#;

    const LORENZ: &str = r#"# Stochastic Lorenz-63
dim = 3
[params]
sigma = 10
rho = 28.0
beta = 2.6666666666666665
noise = 0.5
[drift]
z1 = "sigma*(z2 - z1)"
z2 = "z1*(rho - z3) - z2"
z3 = "z1*z2 - beta*z3"
[diffusion]
diagonal = ["noise", "noise", "noise*(1 + 0*z3)"]
"#;

    fn parse(text: &str) -> Result<UserSde, ExprError> {
        parse_user_sde(text, Path::new(FILE))
    }

    /// DUFFING with `old` replaced by `new` (which must occur).
    fn duffing_with(old: &str, new: &str) -> String {
        assert!(DUFFING.contains(old), "test bug: {old:?} not in DUFFING");
        DUFFING.replacen(old, new, 1)
    }

    fn err_of(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// Error message mentions the file, the line and every token.
    fn assert_err(text: &str, line: Option<usize>, tokens: &[&str]) {
        let msg = err_of(text);
        assert!(msg.contains(FILE), "no file name in: {msg}");
        if let Some(l) = line {
            let needle = format!("{FILE}:{l}:");
            assert!(
                msg.contains(&needle) || msg.contains(&format!("line {l}")),
                "no line {l} in: {msg}"
            );
        }
        for t in tokens {
            assert!(msg.contains(t), "no `{t}` in: {msg}");
        }
    }

    fn ev(src: &str) -> f64 {
        ev_at(src, &[0.5, -2.0, 3.0], &[0.25])
    }

    fn ev_at(src: &str, z: &[f64], u: &[f64]) -> f64 {
        let params = [("a".to_string(), 2.0), ("b".to_string(), -1.5)];
        let scope = ExprScope {
            dim: 3,
            inputs: 1,
            params: &params,
            allow_z: true,
            allow_u: true,
        };
        match Expr::parse(src, &scope) {
            Ok(e) => e.eval(z, u),
            Err(e) => panic!("{e}"),
        }
    }

    fn parse_err(src: &str) -> String {
        let scope = ExprScope {
            dim: 2,
            inputs: 1,
            params: &[],
            allow_z: true,
            allow_u: true,
        };
        match Expr::parse(src, &scope) {
            Ok(e) => panic!("expected an error for {src:?}, got {e:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    // ----- valid files ---------------------------------------------------

    #[test]
    fn duffing_example() {
        let s = parse(DUFFING).expect("valid");
        assert_eq!(s.name, "my-duffing");
        assert_eq!((s.dim, s.inputs, s.noise_dim), (2, 1, 2));
        assert_eq!(
            s.params,
            vec![
                ("alpha".to_string(), 1.0),
                ("beta".to_string(), 0.5),
                ("sigma".to_string(), 0.3)
            ]
        );
        assert_eq!(s.bbox, Some(vec![(-3.0, 3.0), (-3.0, 3.0)]));
        assert_eq!(s.dt, Some(0.01));
        assert_eq!(s.source, PathBuf::from(FILE));
        let (z, u) = ([1.5, -0.5], [0.7]);
        let f = s.drift_point(&z, &u);
        assert!(close(f[0], -0.5));
        assert!(close(f[1], 1.5 - 0.5 * 1.5f64.powi(3) + 0.1 + 0.7));
        assert_eq!(
            s.diffusion,
            UserDiffusion::Constant(vec![vec![0.3, 0.0], vec![0.0, 0.3]])
        );
        assert!(s.is_additive_noise());
        assert_eq!(s.diffusion_point(&z), vec![vec![0.3, 0.0], vec![0.0, 0.3]]);
        // beta*z1^3 folded to Mul(Const, Pow(Var, Const(3))), an integer power.
        let mut found = false;
        fn find_pow(e: &Expr, found: &mut bool) {
            if matches!(e.integer_power(), Some((Expr::Var(0), 3))) {
                *found = true;
            }
            match e {
                Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) => {
                    find_pow(a, found);
                    find_pow(b, found);
                }
                _ => {}
            }
        }
        find_pow(&s.drift[1], &mut found);
        assert!(found, "no z1^3 in {:?}", s.drift[1]);
        assert!(s.drift[1].depends_on_u() && s.drift[1].depends_on_z());
        assert!(!s.drift[0].depends_on_u());
    }

    #[test]
    fn lorenz_example() {
        let s = parse(LORENZ).expect("valid");
        assert_eq!(s.name, "test_sde");
        assert_eq!((s.dim, s.inputs, s.noise_dim), (3, 0, 3));
        assert_eq!(s.param("sigma"), Some(10.0));
        let z = [1.0, 2.0, 3.0];
        let f = s.drift_point(&z, &[]);
        assert!(close(f[0], 10.0));
        assert!(close(f[1], 23.0));
        assert!(close(f[2], 2.0 - 8.0));
        // `noise*(1 + 0*z3)` still mentions z3 (no x*0 folding), so it is state-dependent.
        assert!(matches!(s.diffusion, UserDiffusion::Diagonal(_)));
        assert!(s.diffusion.is_state_dependent());
        let g = s.diffusion_point(&z);
        assert_eq!(g.len(), 3);
        for (i, row) in g.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                assert!(close(v, if i == j { 0.5 } else { 0.0 }));
            }
        }
        assert_eq!(s.bbox, None);
        assert_eq!(s.dt, None);
    }

    #[test]
    fn load_from_disk_and_missing_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("attractor_expr_test_{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("lorenz.toml");
        std::fs::write(&path, LORENZ)?;
        let s = load_user_sde(&path)?;
        assert_eq!(s.name, "lorenz");
        assert_eq!(s.source, path);
        std::fs::remove_dir_all(&dir)?;

        let missing = dir.join("nope.toml");
        match load_user_sde(&missing) {
            Err(e @ ExprError::Io { .. }) => assert!(e.to_string().contains("nope.toml")),
            other => panic!("expected Io error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn param_override_rebinds() -> Result<(), ExprError> {
        let s = parse(DUFFING)?;
        let s2 = s.with_params(&[("beta".to_string(), 1.0), ("sigma".to_string(), 0.1)])?;
        assert_eq!(s2.param("beta"), Some(1.0));
        assert_eq!(s2.param("alpha"), Some(1.0));
        let f = s2.drift_point(&[2.0, 0.0], &[0.0]);
        assert!(close(f[1], 2.0 - 8.0));
        assert_eq!(s2.diffusion_point(&[0.0, 0.0])[1][1], 0.1);
        // chained overrides keep earlier ones
        let s3 = s2.with_params(&[("alpha".to_string(), 0.0)])?;
        assert_eq!(s3.param("beta"), Some(1.0));
        assert!(close(s3.drift_point(&[2.0, 0.0], &[0.0])[1], -8.0));
        // original untouched
        assert_eq!(s.param("beta"), Some(0.5));

        let e = s
            .with_params(&[("gamma".to_string(), 1.0)])
            .expect_err("unknown parameter");
        let m = e.to_string();
        assert!(
            m.contains(FILE) && m.contains("gamma") && m.contains("alpha"),
            "{m}"
        );
        let e = s
            .with_params(&[("beta".to_string(), f64::NAN)])
            .expect_err("non-finite");
        assert!(e.to_string().contains("not finite"), "{e}");
        Ok(())
    }

    #[test]
    fn override_making_constant_non_finite_is_reported() {
        let text =
            duffing_with("beta = 0.5", "beta = 0.5\nden = 1.0").replace("0.2*z2", "(1/den)*z2");
        let s = parse(&text).expect("valid");
        let e = s.with_params(&[("den".to_string(), 0.0)]).expect_err("1/0");
        let m = e.to_string();
        assert!(
            m.contains(&format!("{FILE}:14:")) && m.contains("non-finite"),
            "{m}"
        );
    }

    #[test]
    fn parse_param_override_strings() {
        assert_eq!(
            parse_param_override(" beta = -1.5e-1 ").ok(),
            Some(("beta".to_string(), -0.15))
        );
        for bad in ["beta", "1x=2", "beta=abc", "beta=inf"] {
            let e = parse_param_override(bad).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn diffusion_entries_and_diagonal() -> Result<(), ExprError> {
        let text = duffing_with(
            r#"matrix = [["sigma", 0.0], [0.0, "sigma"]]"#,
            r#"entries = [["sigma*(1+z1^2)", "0"], [0, "sigma"]]"#,
        );
        let s = parse(&text)?;
        assert!(matches!(s.diffusion, UserDiffusion::Entries(_)));
        assert!(!s.is_additive_noise());
        let g = s.diffusion_point(&[2.0, 0.0]);
        assert!(close(g[0][0], 0.3 * 5.0));
        assert_eq!(g[0][1], 0.0);
        assert_eq!(g[1][1], 0.3);

        let text = duffing_with(
            r#"matrix = [["sigma", 0.0], [0.0, "sigma"]]"#,
            r#"diagonal = ["sigma", "sigma*abs(z2)"]"#,
        );
        let s = parse(&text)?;
        let g = s.diffusion_point(&[0.0, -2.0]);
        assert_eq!(g, vec![vec![0.3, 0.0], vec![0.0, 0.6]]);

        // non-square constant matrix
        let text = duffing_with("noise_dim = 2", "noise_dim = 3").replace(
            r#"matrix = [["sigma", 0.0], [0.0, "sigma"]]"#,
            r#"matrix = [["sigma", 0.0, "2*sigma"], [0.0, "sigma", 1]]"#,
        );
        let s = parse(&text)?;
        assert_eq!(s.noise_dim, 3);
        assert_eq!(
            s.diffusion_point(&[0.0, 0.0]),
            vec![vec![0.3, 0.0, 0.6], vec![0.0, 0.3, 1.0]]
        );
        Ok(())
    }

    // ----- expression evaluation -------------------------------------------

    #[test]
    fn evaluation_precedence_and_functions() {
        // z = [0.5, -2, 3], u = [0.25], a = 2, b = -1.5
        assert_eq!(ev("1 + 2*3"), 7.0);
        assert_eq!(ev("(1 + 2)*3"), 9.0);
        assert_eq!(ev("7/2"), 3.5);
        assert_eq!(ev("10 - 4 - 3"), 3.0);
        assert_eq!(ev("24/4/2"), 3.0);
        assert_eq!(ev("-2^2"), -4.0);
        assert_eq!(ev("(-2)^2"), 4.0);
        assert_eq!(ev("-z2"), 2.0);
        assert_eq!(ev("z1 - -z2"), -1.5);
        assert_eq!(ev("2 * -3"), -6.0);
        assert_eq!(ev("z2^3"), -8.0);
        assert_eq!(ev("z3^2*2"), 18.0);
        assert_eq!(ev("2^-1"), 0.5);
        assert_eq!(ev("2^(3^2)"), 512.0);
        assert_eq!(ev("(2^3)^2"), 64.0);
        assert_eq!(ev("z1^0.5"), 0.5f64.sqrt());
        assert_eq!(ev("a*z3 + b"), 4.5);
        assert_eq!(ev("u1*4"), 1.0);
        assert_eq!(ev("1e-3*1000"), 1.0);
        assert_eq!(ev("2.5e1"), 25.0);
        assert!(close(ev("sin(pi/2) + cos(0) + exp(0) + log(e)"), 4.0));
        assert!(close(ev("ln(e^2)"), 2.0));
        assert!(close(ev("sqrt(16) + abs(z2) + tanh(0)"), 6.0));
        assert!(close(ev("sinh(1) - (e - 1/e)/2"), 0.0));
        assert!(close(ev("cosh(0) + atan(1)*4 - pi"), 1.0));
        assert!(close(ev("tan(pi/4)"), 1.0));
        assert!(close(ev("sigmoid(0)"), 0.5));
        assert!(close(ev("sigmoid(-800)"), 0.0));
        assert_eq!(ev("sign(z2) + sign(0) + sign(z1)"), 0.0);
        assert_eq!(ev("min(z1, z2) + max(z1, z3)"), 1.0);
        assert_eq!(ev("max(1, 5, 2, z3)"), 5.0);
        assert_eq!(ev("pow(2, 10)"), 1024.0);
        assert!(close(ev("atan2(1, 1)"), std::f64::consts::FRAC_PI_4));
        assert_eq!(ev("sin (0)"), 0.0);
        assert_eq!(ev_at("z1^3", &[-2.0], &[]), -8.0);
        assert_eq!(ev_at("z1^2 + z1", &[-3.0], &[]), 6.0);
    }

    #[test]
    fn folding_and_queries() {
        let params = [("k".to_string(), 3.0)];
        let scope = ExprScope {
            dim: 2,
            inputs: 1,
            params: &params,
            allow_z: true,
            allow_u: true,
        };
        let p = |s: &str| Expr::parse(s, &scope).expect(s);
        assert_eq!(p("2*k + 1"), Expr::Const(7.0));
        assert!(p("2*k + 1").is_constant());
        assert_eq!(
            p("z1^k"),
            Expr::Pow(Box::new(Expr::Var(0)), Box::new(Expr::Const(3.0)))
        );
        assert_eq!(p("z1^k").integer_power(), Some((&Expr::Var(0), 3)));
        assert_eq!(p("z1^2.5").integer_power(), None);
        assert_eq!(p("1*z2 + 0"), Expr::Var(1));
        assert_eq!(p("--z2"), Expr::Var(1));
        assert_eq!(p("z1^(k-2)"), Expr::Var(0));
        assert_eq!(p("(z1)^0"), Expr::Const(1.0));
        assert_eq!(p("-1*u1"), Expr::Neg(Box::new(Expr::Input(0))));
        assert!(p("u1 + 1").depends_on_u() && !p("u1").depends_on_z());
        assert!(p("z2*k").depends_on_z() && !p("z2").is_constant());
        assert_eq!(p("-(2)").as_const(), Some(-2.0));
        // Display round-trips
        for s in [
            "z1 - (z2 - 3)",
            "-(z1 + z2)*u1",
            "(-z1)^2",
            "-z1^2",
            "z1^(-2)",
            "z1/(z2*z1)",
            "max(z1, -3)*sin(z2)^2",
            "(z1^2)^3",
            "z1^(z2^2)",
            "-(-z1)",
            "1e-7*z1 + 2.5e20",
            "atan2(z1, u1) - k/(1 + exp(-z2))",
        ] {
            let e = p(s);
            let printed = e.to_string();
            assert_eq!(p(&printed), e, "{s} printed as {printed}");
        }
    }

    #[test]
    fn bad_expressions() {
        let cases: &[(&str, &str)] = &[
            ("zz1 + 1", "`zz1`"),
            ("z3", "`z3`"),
            ("z0", "`z0`"),
            ("u2", "`u2`"),
            ("foo(z1)", "unknown function `foo`"),
            ("z1 +", "needs two operands"),
            ("(z1", "parse error"),
            ("z1 = 3", "assignment"),
            ("z1 += 3", "assignment"),
            ("\"abc\"", "string literal"),
            ("true", "boolean"),
            ("z1 > 0", "comparison operator `>`"),
            ("z1 == 0", "comparison operator `==`"),
            ("z1 && z2", "logical operator `&&`"),
            ("z1 % 2", "modulo"),
            ("z1; z2", "`;`"),
            ("z1, z2", "`,`"),
            ("z1 // 2", "`//`"),
            ("2z1", "implicit multiplication"),
            ("z1(z2)", "not a function"),
            ("z1 z2", "missing operator after `z1`"),
            ("sin z1", "parentheses"),
            ("sin", "is a function"),
            ("sin(z1, z2)", "takes 1 argument, got 2"),
            ("min(z1)", "at least 2 arguments"),
            ("pow(z1)", "takes 2 arguments, got 1"),
            ("z1 $ 2", "`$`"),
            ("", "empty expression"),
            ("()", "empty"),
            ("2^3^2", "chained power"),
            ("log(0) * z1", "non-finite"),
            ("1/0", "inf"),
        ];
        for (src, want) in cases {
            let m = parse_err(src);
            assert!(m.contains(want), "{src:?}: expected `{want}` in: {m}");
        }
        let scope = ExprScope {
            dim: 2,
            inputs: 1,
            params: &[],
            allow_z: false,
            allow_u: false,
        };
        let m = Expr::parse("z1 + 1", &scope).expect_err("no z").to_string();
        assert!(m.contains("`z1` is not allowed"), "{m}");
        let m = Expr::parse("u1 + 1", &scope).expect_err("no u").to_string();
        assert!(m.contains("`u1` is not allowed"), "{m}");
    }

    // ----- file errors: file name, line, token ------------------------------

    #[test]
    fn toml_syntax_error() {
        let text = duffing_with("beta = 0.5", "beta = 0.5 0.6");
        assert_err(&text, Some(8), &["TOML parse error"]);
        let text = duffing_with("dim = 2", "dim = \"two\"");
        assert_err(&text, Some(2), &["dim", "string"]);
        let text = duffing_with("noise_dim = 2", "noise-dim = 2");
        assert_err(&text, Some(4), &["unknown field `noise-dim`"]);
        let text = duffing_with("dt = 0.01", "dT = 0.01");
        assert_err(&text, Some(23), &["unknown field `dT`"]);
    }

    #[test]
    fn dim_errors() {
        assert_err(
            &duffing_with("dim = 2\n", ""),
            None,
            &["missing required key `dim`"],
        );
        assert_err(&duffing_with("dim = 2", "dim = 0"), Some(2), &["`dim = 0`"]);
        assert_err(
            &duffing_with("dim = 2", "dim = 65"),
            Some(2),
            &["`dim = 65`", "64"],
        );
        assert_err(
            &duffing_with("inputs = 1", "inputs = -1"),
            Some(3),
            &["`inputs = -1`"],
        );
        assert_err(
            &duffing_with("noise_dim = 2", "noise_dim = 0"),
            Some(4),
            &["`noise_dim = 0`"],
        );
    }

    #[test]
    fn drift_key_errors() {
        let text = duffing_with("z2 = \"alpha*z1 - beta*z1^3 - 0.2*z2 + u1\"\n", "");
        assert_err(&text, Some(11), &["missing drift for `z2`"]);
        let text = duffing_with("z1 = \"z2\"", "z1 = \"z2\"\nz5 = \"0\"");
        assert_err(&text, Some(13), &["extra drift key `z5`"]);
        let text = duffing_with("z1 = \"z2\"", "x1 = \"z2\"");
        assert_err(&text, Some(12), &["invalid drift key `x1`"]);
        assert_err(
            &DUFFING.replace("[drift]", "[drift_]"),
            Some(11),
            &["drift_"],
        );
        let text = duffing_with("z1 = \"z2\"", "z1 = true");
        assert_err(&text, Some(12), &["drift.z1", "boolean"]);
    }

    #[test]
    fn drift_expression_errors() {
        let cases: &[(&str, &[&str])] = &[
            ("alpha*zz1", &["`zz1`", "drift.z2", "alpha*zz1"]),
            ("alpha*z3", &["`z3`", "dim = 2"]),
            ("alpha*u2", &["`u2`", "inputs = 1"]),
            ("foo(z1)", &["unknown function `foo`"]),
            (
                "gamma*z1",
                &["unknown variable `gamma`", "alpha, beta, sigma"],
            ),
            ("(alpha*z1", &["parse error", "unmatched"]),
            ("z2 = alpha", &["assignment"]),
            ("z1 < 1", &["comparison"]),
            ("'x'", &["invalid token"]),
            ("alpha(z1+1)", &["`alpha` is not a function"]),
        ];
        for (bad, tokens) in cases {
            let line = format!("z2 = \"{bad}\"");
            let text = duffing_with("z2 = \"alpha*z1 - beta*z1^3 - 0.2*z2 + u1\"", &line);
            assert_err(&text, Some(13), tokens);
        }
        // u with inputs = 0
        let text = duffing_with("inputs = 1\n", "");
        assert_err(&text, Some(12), &["`u1`", "inputs = 0"]);
    }

    #[test]
    fn param_errors() {
        assert_err(
            &duffing_with("beta = 0.5", "beta = \"half\""),
            Some(8),
            &["parameter `beta` must be a number", "string"],
        );
        assert_err(
            &duffing_with("beta = 0.5", "beta = nan"),
            Some(8),
            &["parameter `beta`", "not finite"],
        );
        assert_err(
            &duffing_with("beta = 0.5", "z9 = 0.5"),
            Some(8),
            &["`z9`", "clashes"],
        );
        assert_err(
            &duffing_with("beta = 0.5", "sin = 0.5"),
            Some(8),
            &["`sin`", "clashes"],
        );
    }

    #[test]
    fn diffusion_errors() {
        let m = r#"matrix = [["sigma", 0.0], [0.0, "sigma"]]"#;
        assert_err(
            &duffing_with(m, r#"matrix = [["sigma", 0.0], [0.0, "sigma"], [1, 1]]"#),
            Some(16),
            &["wrong shape", "3 rows"],
        );
        assert_err(
            &duffing_with(m, "matrix = [[\"sigma\", 0.0],\n  [0.0, \"sigma\", 1]]"),
            Some(17),
            &["wrong shape", "row 2 has 3 entries", "noise_dim"],
        );
        assert_err(
            &duffing_with(m, r#"matrix = [["sigma*z1", 0.0], [0.0, "sigma"]]"#),
            Some(16),
            &[
                "diffusion.matrix[0][0]",
                "sigma*z1",
                "must be constant",
                "entries",
            ],
        );
        assert_err(
            &duffing_with(m, r#"entries = [["sigma*u1", 0.0], [0.0, "sigma"]]"#),
            Some(16),
            &["diffusion.entries[0][0]", "sigma*u1", "inputs"],
        );
        assert_err(
            &duffing_with(m, r#"entries = [["sigma*z9", 0.0], [0.0, "sigma"]]"#),
            Some(16),
            &["`z9`"],
        );
        assert_err(
            &duffing_with(m, r#"diagonal = ["sigma"]"#),
            Some(16),
            &["`diagonal` has 1 entries"],
        );
        assert_err(
            &duffing_with(m, "diagonal = [\"sigma\", \"sigma\"]")
                .replace("noise_dim = 2", "noise_dim = 3"),
            Some(16),
            &["noise_dim = dim"],
        );
        assert_err(
            &duffing_with(m, &format!("{m}\ndiagonal = [1, 1]")),
            Some(15),
            &["exactly one of"],
        );
        assert_err(
            &duffing_with(m, r#"matrix = [["sigma", 0.0], [0.0, true]]"#),
            Some(16),
            &["diffusion.matrix[1][1]", "boolean"],
        );
        assert_err(
            &duffing_with(m, "diag = [1, 1]"),
            Some(16),
            &["unknown field `diag`"],
        );
        assert_err(
            &duffing_with("[diffusion]\n", "").replace(m, ""),
            None,
            &["missing [diffusion]"],
        );
    }

    #[test]
    fn box_and_sim_errors() {
        assert_err(
            &duffing_with("z1 = [-3.0, 3.0]", "z1 = [3.0, -3.0]"),
            Some(19),
            &["box.z1", "lo must be smaller"],
        );
        assert_err(
            &duffing_with("z2 = [-3.0, 3.0]", "z2 = [1, 1]"),
            Some(20),
            &["box.z2", "lo must be smaller"],
        );
        assert_err(
            &duffing_with("z2 = [-3.0, 3.0]", "z3 = [-3.0, 3.0]"),
            Some(20),
            &["extra box key `z3`"],
        );
        assert_err(
            &duffing_with("z2 = [-3.0, 3.0]\n", ""),
            Some(18),
            &["[box] is missing `z2`"],
        );
        assert_err(
            &duffing_with("z2 = [-3.0, 3.0]", "z2 = [-3.0]"),
            Some(20),
            &["box.z2", "[lo, hi]"],
        );
        assert_err(
            &duffing_with("dt = 0.01", "dt = -0.01"),
            Some(23),
            &["sim.dt = -0.01"],
        );
        assert_err(
            &duffing_with("dt = 0.01", "dt = 0"),
            Some(23),
            &["sim.dt = 0"],
        );
    }
}
