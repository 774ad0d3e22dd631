//! A worked plug-in: a `Flaky` dependency, defined outside the engine and used from RON.
//!
//! It answers every request after a fixed delay and fails a set fraction of them. Build and
//! run it with the scenario at the bottom of this file:
//!
//! ```text
//! cargo run --release --example custom_node -- run engine/examples/flaky.ron
//! ```
//! Three steps make a component: a serde config (its doc comments are what `list` shows), a
//! [`Node`] implementation, and a [`Component`] impl that names it; then register it.

use archsim::Registry;
use archsim::components::message::{Builtin, Ctx, Message};
use archsim::contract::build::BuildCtx;
use archsim::contract::call::{Cause, Reply, Response};
use archsim::contract::validate::{Path, Validator};
use archsim::registry::Component;
use archsim::sim::rng::RandomSource;
use archsim::sim::time::{SimDuration, SimTime};
use archsim::sim::{Node, NodeId, TimerId};
use serde::Deserialize;
use std::collections::VecDeque;

/// A dependency that answers after a fixed delay and fails a fraction of requests.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename = "Flaky", deny_unknown_fields)]
pub struct FlakyConfig {
    /// Time to answer (duration).
    pub delay: SimDuration,
    /// Fraction of requests answered with an error (0..1). Default 0.
    #[serde(default)]
    pub failure_rate: f64,
}

/// The node: answers are queued in arrival order, each released by its own timer.
pub struct Flaky {
    cfg: FlakyConfig,
    owed: VecDeque<(NodeId, Response)>,
}

impl Component for Flaky {
    const KIND: &'static str = "Flaky";
    type Config = FlakyConfig;

    fn validate(cfg: &FlakyConfig, v: &mut Validator<'_>, at: &Path) {
        if !(0.0..=1.0).contains(&cfg.failure_rate) {
            v.error(
                &at.field("failure_rate"),
                "not a fraction",
                "expected a number from 0.0 to 1.0",
            );
        }
    }

    fn build(cfg: &FlakyConfig, _b: &BuildCtx<'_>) -> Flaky {
        Flaky {
            cfg: cfg.clone(),
            owed: VecDeque::new(),
        }
    }
}

impl Node<Builtin> for Flaky {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        if let Message::Request(req) = msg {
            let fail = ctx.rng().uniform() < self.cfg.failure_rate;
            let result = if fail {
                Err(Cause::Rejected)
            } else {
                Ok(Reply::default())
            };
            self.owed.push_back((
                from,
                Response {
                    call: req.call,
                    id: req.id,
                    result,
                },
            ));
            // A constant delay keeps answers in arrival order, so one queue suffices.
            ctx.set_timer(self.cfg.delay, 0);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, _tag: u64) {
        if let Some((to, resp)) = self.owed.pop_front() {
            ctx.send(to, Message::Response(resp));
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        self.owed.clear();
    }
}

/// The `archsim` command line with `Flaky` added.
#[allow(dead_code)] // The test suite includes this file for `Flaky` alone.
fn main() -> std::process::ExitCode {
    archsim::cli::main_with(Registry::builtin().register::<Flaky>())
}
