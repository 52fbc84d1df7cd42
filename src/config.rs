//! Building configurations from defaults, a `--config` JSON file and `--set key=value` overrides.
//!
//! Every model configuration is a `#[derive(Config)]` struct whose fields all have defaults. A
//! user file may give any subset of the keys; unknown keys are an error (a typo must not be
//! silently ignored).

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Merges `overlay` into `base`, refusing keys that `base` does not have.
fn merge(base: &mut Value, overlay: &Value, path: &str) -> Result<()> {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                let full = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let Some(slot) = b.get_mut(k) else {
                    bail!("{}", unknown_key(&full, k, b.keys()));
                };
                if slot.is_object() && v.is_object() {
                    merge(slot, v, &full)?;
                } else {
                    *slot = v.clone();
                }
            }
            Ok(())
        }
        (b, o) => {
            *b = o.clone();
            Ok(())
        }
    }
}

/// The error for a key `full` (last part `k`) that is not among `known`: the closest known key
/// when one is near, then every key.
fn unknown_key<'a>(full: &str, k: &str, known: impl Iterator<Item = &'a String>) -> String {
    let mut known: Vec<&String> = known.collect();
    known.sort();
    let near = known
        .iter()
        .map(|c| (strsim::jaro_winkler(k, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c);
    let list = known
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match near {
        Some(c) => {
            format!("unknown configuration key `{full}`: did you mean `{c}`? (keys: {list})")
        }
        None => format!("unknown configuration key `{full}` (keys: {list})"),
    }
}

/// The dotted paths of the leaves of an override object (`{"a": {"b": 1}}` → `a.b`).
fn leaf_paths(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if x.is_object() {
                    leaf_paths(x, &p, out);
                } else {
                    out.push((p, x.clone()));
                }
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// Sets the dotted `path` of `v` to `x` (the path exists: overrides were merged already).
fn set_path(v: &mut Value, path: &str, x: Value) {
    let mut slot = v;
    for part in path.split('.') {
        match slot.get_mut(part) {
            Some(next) => slot = next,
            None => return,
        }
    }
    *slot = x;
}

/// Most dotted parts a `--set` key may have (configurations nest far less deeply). Bounding it
/// keeps the nested value built from the key (and its recursive drop) small.
const MAX_KEY_PARTS: usize = 16;

/// Parses `key=value` (value as JSON when it parses, else as a string; dotted keys for nesting).
pub fn parse_set(kv: &str) -> Result<Value> {
    let (k, v) = kv
        .split_once('=')
        .with_context(|| format!("--set `{kv}`: expected key=value"))?;
    let parts = k.split('.').count();
    if parts > MAX_KEY_PARTS {
        let shown: String = k.chars().take(40).collect();
        bail!(
            "--set `{shown}…`: the key has {parts} dotted parts; configuration keys nest at most \
             {MAX_KEY_PARTS} deep"
        );
    }
    let val: Value =
        serde_json::from_str(v.trim()).unwrap_or_else(|_| Value::String(v.trim().to_string()));
    let mut out = val;
    for part in k.trim().split('.').rev() {
        let mut m = serde_json::Map::new();
        m.insert(part.to_string(), out);
        out = Value::Object(m);
    }
    Ok(out)
}

/// `defaults`, then the file, then each `--set`, then `extra` (explicit CLI flags).
pub fn build<C: Serialize + DeserializeOwned>(
    defaults: &C,
    file: Option<&Path>,
    sets: &[String],
    extra: &[Value],
) -> Result<C> {
    let text = file
        .map(|f| {
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read config {}", f.display()))
        })
        .transpose()?;
    build_from_text(defaults, file.zip(text.as_deref()), sets, extra)
}

/// [`build`] with the config file's text already read: `file` is `(path, text)`, the path only
/// naming the file in errors.
pub fn build_from_text<C: Serialize + DeserializeOwned>(
    defaults: &C,
    file: Option<(&Path, &str)>,
    sets: &[String],
    extra: &[Value],
) -> Result<C> {
    let base = serde_json::to_value(defaults)?;
    let mut v = base.clone();
    // Every value given (file, --set, flags), in order, to name the key of a value of the
    // wrong type: serde's message names only the type.
    let mut given: Vec<(String, Value)> = Vec::new();
    if let Some((f, text)) = file {
        let mut o: Value = serde_json::from_str(text)
            .with_context(|| format!("config {} is not valid JSON", f.display()))?;
        // Accept a run directory's config.json as well (`{"meta":…, "config":…}`).
        if let Some(inner) = o.get("config").filter(|_| o.get("meta").is_some()).cloned() {
            o = inner;
        }
        merge(&mut v, &o, "").with_context(|| format!("in config file {}", f.display()))?;
        leaf_paths(&o, "", &mut given);
    }
    for s in sets {
        let o = parse_set(s)?;
        merge(&mut v, &o, "")?;
        leaf_paths(&o, "", &mut given);
    }
    for e in extra {
        merge(&mut v, e, "")?;
        leaf_paths(e, "", &mut given);
    }
    serde_json::from_value::<C>(v.clone()).map_err(|e| {
        // The first given value that alone breaks the defaults is the culprit.
        for (path, x) in &given {
            let mut one = base.clone();
            set_path(&mut one, path, x.clone());
            if let Err(e1) = serde_json::from_value::<C>(one) {
                return anyhow::anyhow!("configuration key `{path}`: {e1}");
            }
        }
        // serde names the bad value, not its key: find the key for an unknown choice.
        let msg = e.to_string();
        let key = msg
            .strip_prefix("unknown variant `")
            .and_then(|rest| rest.split('`').next())
            .and_then(|bad| {
                v.as_object()?
                    .iter()
                    .find(|(_, x)| x.as_str() == Some(bad))
                    .map(|(k, _)| k.clone())
            });
        match key {
            Some(k) => anyhow::anyhow!("configuration key `{k}`: {msg}"),
            None => anyhow::Error::new(e).context("configuration has a value of the wrong type"),
        }
    })
}

/// `Display` for configuration choices (enums deriving clap's `ValueEnum`): the spelling used in
/// `config.json` and on the command line.
#[macro_export]
#[doc(hidden)]
macro_rules! __choice_display {
    ($($t:ty),* $(,)?) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                use clap::ValueEnum;
                match self.to_possible_value() {
                    Some(v) => f.write_str(v.get_name()),
                    None => write!(f, "{self:?}"),
                }
            }
        }
    )*};
}
pub use crate::__choice_display as choice_display;

/// A configuration value that names either one of a family's built-ins (an enum `B` deriving
/// clap's `ValueEnum`) or a user's file or folder: the SDE (`sde`), the FEP `patterns`, the NLM
/// `data`. In `config.json` and on the command line it is the plain string it always was (the
/// built-in's name or the path), so run directories of earlier releases load unchanged.
///
/// Parsing: a built-in's name gives [`Source::Builtin`]; a string that looks like a path (it
/// has a `/`, `\\` or `.`, or names something that exists) gives [`Source::Path`]; anything
/// else is an error that lists the built-ins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source<B: Builtins> {
    /// One of the built-ins.
    Builtin(B),
    /// A file or folder of the user's.
    Path(std::path::PathBuf),
}

/// The built-ins a [`Source`] may name.
pub trait Builtins: clap::ValueEnum {
    /// What they are, for errors (`SDE`, `pattern set`, …).
    const WHAT: &'static str;
}

impl<B: Builtins> Source<B> {
    /// Parses `s` (see the type's documentation).
    pub fn parse(s: &str) -> Result<Self> {
        let what = B::WHAT;
        if let Some(b) = B::value_variants()
            .iter()
            .find(|b| b.to_possible_value().is_some_and(|v| v.get_name() == s))
        {
            return Ok(Self::Builtin(b.clone()));
        }
        if s.is_empty() {
            bail!("`{what}` is empty");
        }
        if s.contains(['/', '\\', '.']) || Path::new(s).exists() {
            return Ok(Self::Path(s.into()));
        }
        let names: Vec<String> = B::value_variants()
            .iter()
            .filter_map(|b| b.to_possible_value().map(|v| v.get_name().to_owned()))
            .collect();
        bail!(
            "unknown {what} `{s}`: built-ins are {} (or give a path)",
            names.join(", ")
        )
    }

    /// The same source with a relative path made absolute against the working directory (not
    /// resolving links), so that a run directory names it from anywhere.
    pub fn absolute(&self) -> Result<Self> {
        match self {
            Self::Path(p) if p.is_relative() => {
                Ok(Self::Path(std::path::absolute(p).with_context(|| {
                    format!("cannot make {} absolute", p.display())
                })?))
            }
            other => Ok(other.clone()),
        }
    }

    /// The built-in, if this is one.
    pub fn builtin(&self) -> Option<&B> {
        match self {
            Self::Builtin(b) => Some(b),
            Self::Path(_) => None,
        }
    }
}

impl<B: Builtins> From<B> for Source<B> {
    fn from(b: B) -> Self {
        Self::Builtin(b)
    }
}

impl<B: Builtins> std::fmt::Display for Source<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Builtin(b) => match b.to_possible_value() {
                Some(v) => f.write_str(v.get_name()),
                None => f.write_str("?"),
            },
            Self::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl<B: Builtins> std::str::FromStr for Source<B> {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl<B: Builtins> Serialize for Source<B> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

impl<'de, B: Builtins> serde::Deserialize<'de> for Source<B> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct C {
        a: f64,
        b: String,
        n: Inner,
    }
    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Inner {
        x: usize,
    }

    #[test]
    fn overrides_and_unknown_keys() {
        let d = C {
            a: 1.0,
            b: "q".into(),
            n: Inner { x: 3 },
        };
        let c: C = build(
            &d,
            None,
            &["a=2.5".into(), "n.x=7".into(), "b=hello".into()],
            &[],
        )
        .unwrap();
        assert_eq!(
            c,
            C {
                a: 2.5,
                b: "hello".into(),
                n: Inner { x: 7 }
            }
        );
        let e = build::<C>(&d, None, &["zz=1".into()], &[]).unwrap_err();
        assert!(format!("{e:#}").contains("unknown configuration key `zz`"));
        let e = build::<C>(&d, None, &["a=notanumber".into()], &[]).unwrap_err();
        assert!(
            format!("{e:#}").contains("configuration key `a`: invalid type: string"),
            "{e:#}"
        );
        let e = build::<C>(&d, None, &["n.x=seven".into()], &[]).unwrap_err();
        assert!(
            format!("{e:#}").contains("configuration key `n.x`"),
            "{e:#}"
        );
    }

    #[test]
    fn mistyped_keys_get_the_closest_key() {
        let d = C {
            a: 1.0,
            b: "q".into(),
            n: Inner { x: 3 },
        };
        let mut v = serde_json::to_value(&d).unwrap();
        if let Value::Object(m) = &mut v {
            m.insert("updates".into(), 5.into());
            m.insert("steps_per_update".into(), 5.into());
        }
        let e = merge(&mut v.clone(), &parse_set("udpates=3").unwrap(), "").unwrap_err();
        assert!(e.to_string().contains("did you mean `updates`?"), "{e}");
        let e = merge(&mut v, &parse_set("zzz=3").unwrap(), "").unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
    }

    #[derive(Clone, Debug, PartialEq, clap::ValueEnum)]
    enum Named {
        Mnist,
        OuRot,
    }

    impl Builtins for Named {
        const WHAT: &'static str = "thing";
    }

    #[test]
    fn sources_keep_their_strings() {
        for (text, want) in [
            ("mnist", Source::Builtin(Named::Mnist)),
            ("ou-rot", Source::Builtin(Named::OuRot)),
            ("my.toml", Source::Path("my.toml".into())),
            ("data/shapes", Source::Path("data/shapes".into())),
        ] {
            let s: Source<Named> = serde_json::from_value(Value::from(text)).unwrap();
            assert_eq!(s, want);
            assert_eq!(serde_json::to_value(&s).unwrap(), Value::from(text));
        }
        let e = Source::<Named>::parse("lorenzz").unwrap_err().to_string();
        assert!(
            e.contains("unknown thing `lorenzz`") && e.contains("mnist, ou-rot"),
            "{e}"
        );
    }
}
