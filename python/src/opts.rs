//! Options of an operation handed over as a JSON object (the package's keyword arguments
//! that were given), applied over the library's defaults.

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The options given; each is taken once, and [`Opts::finish`] refuses any left over.
pub struct Opts(Map<String, Value>);

impl Opts {
    /// Parses a JSON object.
    pub fn parse(text: &str) -> Result<Self> {
        match serde_json::from_str(text).context("the options are not valid JSON")? {
            Value::Object(m) => Ok(Self(m)),
            other => bail!("the options must be a JSON object, not {other}"),
        }
    }
    /// The value of `key`, if given (and not `None`).
    pub fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .with_context(|| format!("option `{key}`: cannot use {v}")),
        }
    }
    /// Sets `field` to the value of `key` when given.
    pub fn set<T: DeserializeOwned>(&mut self, key: &str, field: &mut T) -> Result<()> {
        if let Some(v) = self.take(key)? {
            *field = v;
        }
        Ok(())
    }
    /// The choice named by `key` (a clap value name, as on the command line), if given.
    pub fn choice<T: clap::ValueEnum>(&mut self, key: &str) -> Result<Option<T>> {
        let Some(s) = self.take::<String>(key)? else {
            return Ok(None);
        };
        T::from_str(&s, true).map(Some).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
                .collect();
            anyhow::anyhow!(
                "option `{key}`: unknown value `{s}` (one of: {})",
                names.join(", ")
            )
        })
    }
    /// Sets `field` to the choice named by `key` when given.
    pub fn set_choice<T: clap::ValueEnum>(&mut self, key: &str, field: &mut T) -> Result<()> {
        if let Some(v) = self.choice(key)? {
            *field = v;
        }
        Ok(())
    }
    /// Fails on options nobody took.
    pub fn finish(self) -> Result<()> {
        if let Some(k) = self.0.keys().next() {
            bail!("unknown option `{k}`");
        }
        Ok(())
    }
}
