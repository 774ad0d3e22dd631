//! The component registry: the built-ins, plus the one door for a user's own node types.
//!
//! A plug-in is a type implementing [`Component`]: a [`Node`] with a serde config. Registered
//! under its `KIND` name, it is used from a RON file exactly like a built-in:
//!
//! ```ignore
//! let registry = archsim::Registry::builtin().register::<Echo>();
//! std::process::exit(archsim::cli::main_with(registry));
//! ```
//! and in the scenario: `"echo": Echo(delay: "1ms")`. See `engine/examples/custom_node.rs`.

use crate::components::message::Builtin;
use crate::components::{PluginBuilder, PluginConfig, PluginNode};
use crate::contract::build::BuildCtx;
use crate::contract::settable::parse_value;
use crate::contract::validate::{Path, Validator};
use crate::sim::Node;
use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// A user-defined node type that scenario files can name.
pub trait Component: Node<Builtin> + Send + Sized + 'static {
    /// The name used in scenario files, e.g. `"Echo"`. It must not be a built-in's name.
    const KIND: &'static str;
    /// Its configuration, read from the RON value (`Echo(delay: "1ms")`). Its doc comments
    /// become `archsim list`'s description of the fields.
    type Config: DeserializeOwned + JsonSchema;

    /// Check values the types cannot express; report with `v.error(&at.field("x"), ...)`.
    fn validate(_cfg: &Self::Config, _v: &mut Validator<'_>, _at: &Path) {}

    /// Build the node. Names of other nodes resolve through `b.resolve(..)`.
    fn build(cfg: &Self::Config, b: &BuildCtx<'_>) -> Self;
}

trait PluginKind: Send + Sync {
    fn check(&self, ron: &str) -> Result<(), ron::error::SpannedError>;
    fn validate(&self, ron: &str, v: &mut Validator<'_>, at: &Path);
    fn build(&self, ron: &str, b: &BuildCtx<'_>) -> PluginNode;
    fn schema(&self) -> Schema;
}

struct Kind<C>(std::marker::PhantomData<fn() -> C>);

impl<C: Component> PluginKind for Kind<C> {
    fn check(&self, ron: &str) -> Result<(), ron::error::SpannedError> {
        parse_value::<C::Config>(ron).map(|_| ())
    }

    fn validate(&self, ron: &str, v: &mut Validator<'_>, at: &Path) {
        match parse_value::<C::Config>(ron) {
            Ok(cfg) => C::validate(&cfg, v, at),
            Err(e) => v.error(
                at,
                format!("invalid {} config: {}", C::KIND, e.code),
                "expected a valid config",
            ),
        }
    }

    fn build(&self, ron: &str, b: &BuildCtx<'_>) -> PluginNode {
        // Validation parsed this same text successfully, so parsing again cannot fail.
        let cfg = parse_value::<C::Config>(ron).expect("plug-in config was validated");
        Box::new(C::build(&cfg, b))
    }

    fn schema(&self) -> Schema {
        schemars::schema_for!(C::Config)
    }
}

/// Names of the built-in components, as written in scenario files.
pub const BUILTIN_KINDS: [&str; 20] = [
    "Client",
    "LoadBalancer",
    "Server",
    "CircuitBreaker",
    "RateLimiter",
    "Bulkhead",
    "TxnClient",
    "TxnCoordinator",
    "TxnParticipant",
    "Cache",
    "KvClient",
    "ReplicatedStore",
    "ReadReplicas",
    "Queue",
    "ShardRouter",
    "Topic",
    "LogConsumer",
    "Autoscaler",
    "Deploy",
    "Gslb",
];

/// The component kinds a run may use.
#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<&'static str, Box<dyn PluginKind>>,
}

impl Registry {
    /// The built-in components only.
    pub fn builtin() -> Registry {
        Registry::default()
    }

    /// Add a plug-in component, usable by its `KIND` name.
    ///
    /// # Panics
    /// If `C::KIND` is a built-in's name or already registered: a programming error in the
    /// embedding binary, caught the first time it runs.
    pub fn register<C: Component>(mut self) -> Registry {
        assert!(
            !BUILTIN_KINDS.contains(&C::KIND),
            "`{}` is a built-in component name",
            C::KIND
        );
        let previous = self
            .plugins
            .insert(C::KIND, Box::new(Kind::<C>(std::marker::PhantomData)));
        assert!(
            previous.is_none(),
            "component `{}` registered twice",
            C::KIND
        );
        self
    }

    /// Is `kind` a registered plug-in?
    pub fn has_plugin(&self, kind: &str) -> bool {
        self.plugins.contains_key(kind)
    }

    /// Every component name, built-ins first.
    pub fn kind_names(&self) -> Vec<&'static str> {
        BUILTIN_KINDS
            .iter()
            .copied()
            .chain(self.plugins.keys().copied())
            .collect()
    }

    /// The JSON schema of each plug-in's config, for `archsim list`.
    pub fn plugin_schemas(&self) -> Vec<(&'static str, Schema)> {
        self.plugins.iter().map(|(k, p)| (*k, p.schema())).collect()
    }

    pub(crate) fn check_plugin_syntax(
        &self,
        p: &PluginConfig,
    ) -> Result<(), ron::error::SpannedError> {
        match self.plugins.get(p.kind.as_str()) {
            Some(kind) => kind.check(&p.ron),
            None => Ok(()),
        }
    }

    pub(crate) fn validate_plugin(&self, p: &PluginConfig, v: &mut Validator<'_>, at: &Path) {
        match self.plugins.get(p.kind.as_str()) {
            Some(kind) => kind.validate(&p.ron, v, at),
            None => v.error(
                at,
                format!("`{}` is not a registered component", p.kind),
                "expected a registered component",
            ),
        }
    }
}

impl PluginBuilder for Registry {
    fn build_plugin(&self, p: &PluginConfig, b: &BuildCtx<'_>) -> PluginNode {
        let kind = self
            .plugins
            .get(p.kind.as_str())
            .expect("plug-in kind was validated");
        kind.build(&p.ron, b)
    }
}
