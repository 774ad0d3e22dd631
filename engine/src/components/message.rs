//! The built-in vocabulary: the closed list of messages the built-in components send each other
//! ([`Message`]), and what they record run-wide and report ([`Builtin`]).
//!
//! The kernel never looks inside a message; it is a parameter of the kernel (its
//! [`Vocabulary`]). A protocol family adds its own variant here, next to calls, and nothing
//! under `sim/` changes; a plug-in protocol uses [`Message::User`] without touching the engine.

use crate::components::data::cache::PurgeMsg;
use crate::components::data::stream_msg::StreamMsg;
use crate::components::replication::msg::ReplicaMsg;
use crate::components::txn::TxnMsg;
use crate::contract::call::{Cause, Request, RequestId, Response};
use crate::contract::metrics::{NodeStats, RequestMetrics};
use crate::contract::trace::{Carried, Mark, Record, SpanKind};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Sent, Vocabulary};
use std::any::Any;
use std::fmt;

/// The vocabulary of the built-in components (and of plug-ins, which speak it too).
pub struct Builtin;

impl Vocabulary for Builtin {
    type Msg = Message;
    type Inline = UserMsg;
    type Sink = RequestMetrics;
    type Stats = NodeStats;

    /// A plug-in payload is a box: it travels inside its queue entry. Every other message
    /// (up to 56 bytes) waits in the kernel's side table.
    #[inline]
    fn to_inline(msg: Message) -> Result<UserMsg, Message> {
        match msg {
            Message::User(user) => Ok(user),
            other => Err(other),
        }
    }

    #[inline]
    fn from_inline(inline: UserMsg) -> Message {
        Message::User(inline)
    }

    /// Requests and successful replies weigh what their `size` says; everything else is
    /// counted as nothing (its headers are small next to the links' capacities).
    fn size(msg: &Message) -> u64 {
        match msg {
            Message::Request(r) => r.size.into(),
            Message::Response(r) => r.result.map_or(0, |reply| reply.size.into()),
            Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => 0,
        }
    }

    /// Every built-in message can be copied; a plug-in payload (a box of anything) cannot,
    /// and is delivered once.
    fn duplicate(msg: &Message) -> Option<Message> {
        match msg {
            Message::Request(r) => Some(Message::Request(*r)),
            Message::Response(r) => Some(Message::Response(*r)),
            Message::Txn(t) => Some(Message::Txn(*t)),
            Message::Replica(r) => Some(Message::Replica(*r)),
            Message::Stream(s) => Some(Message::Stream(s.clone())),
            Message::Purge(p) => Some(Message::Purge(*p)),
            Message::User(_) => None,
        }
    }

    /// A message on a traced request's behalf joins its trace.
    fn sent(sink: &mut RequestMetrics, send: Sent, msg: &Message) {
        let Some(tracer) = sink.tracer.as_deref_mut() else {
            return;
        };
        let (id, carried) = match msg {
            Message::Request(r) => (r.id, Carried::Request { attempt: r.attempt }),
            Message::Response(r) => (r.id, Carried::Response(r.result.map(|_| ()))),
            Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => return,
        };
        tracer.record(id, Record::Send { send, carried });
    }

    /// Every request the clients issued has ended.
    fn drained(sink: &RequestMetrics) -> bool {
        sink.in_flight() == 0
    }
}

/// A built-in node's window on the world while it handles one event.
pub type Ctx<'a> = crate::sim::Ctx<'a, Builtin>;

/// End-to-end request accounting, recorded by the clients.
impl Ctx<'_> {
    /// A client issued a request.
    #[inline]
    pub fn request_started(&mut self) {
        self.sink().started();
    }

    /// A client's request ended: success, or failure with its cause.
    #[inline]
    pub fn request_ended(&mut self, issued_at: SimTime, result: Result<(), Cause>) {
        let now = self.now();
        self.sink().ended(issued_at, now, result);
    }

    /// A client's request of class `class` ended: success, or failure with its cause.
    #[inline]
    pub fn request_ended_in(
        &mut self,
        class: u8,
        issued_at: SimTime,
        result: Result<(), crate::contract::call::Cause>,
    ) {
        let now = self.now();
        self.sink().ended_in(class, issued_at, now, result);
    }
}

/// Per-request traces (`archsim run --trace N`): each call costs one branch when no trace is
/// kept.
impl Ctx<'_> {
    /// A client issued request `id`: it may join the traced sample.
    #[inline]
    pub fn trace_start(&mut self, id: RequestId) {
        let (node, at) = (self.me(), self.now());
        if let Some(t) = self.sink().tracer.as_deref_mut() {
            t.start(id, node, at);
        }
    }

    /// Request `id` ended at its client with `result`.
    #[inline]
    pub fn trace_end(&mut self, id: RequestId, result: Result<(), Cause>) {
        let at = self.now();
        if let Some(t) = self.sink().tracer.as_deref_mut() {
            t.record(id, Record::End { at, result });
        }
    }

    /// This node spent `[start, end)` on request `id` doing `kind`.
    #[inline]
    pub fn trace_span(&mut self, id: RequestId, kind: SpanKind, start: SimTime, end: SimTime) {
        let node = self.me();
        if let Some(t) = self.sink().tracer.as_deref_mut() {
            t.record(
                id,
                Record::Span {
                    node,
                    kind,
                    start,
                    end,
                },
            );
        }
    }

    /// This node took its worker from request `id` now (preemptive-resume priority).
    #[inline]
    pub fn trace_preempted(&mut self, id: RequestId) {
        let (node, at) = (self.me(), self.now());
        if let Some(t) = self.sink().tracer.as_deref_mut() {
            t.preempted(id, node, at);
        }
    }

    /// This node resumes request `id` now, with `left` of its service to go.
    #[inline]
    pub fn trace_resumed(&mut self, id: RequestId, left: SimDuration) {
        let (node, at) = (self.me(), self.now());
        if let Some(t) = self.sink().tracer.as_deref_mut() {
            t.resumed(id, node, at, left);
        }
    }

    /// `mark` happened to request `id` here, now.
    #[inline]
    pub fn trace_mark(&mut self, id: RequestId, mark: Mark) {
        let (node, at) = (self.me(), self.now());
        if let Some(t) = self.sink().tracer.as_deref_mut() {
            t.record(id, Record::Mark { node, at, mark });
        }
    }
}

/// A plug-in protocol's payload: anything `'static + Send`, downcast by the receiver.
pub struct UserMsg(pub Box<dyn Any + Send>);

impl fmt::Debug for UserMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserMsg(..)")
    }
}

/// Everything a node can send.
#[derive(Debug)]
pub enum Message {
    /// A call.
    Request(Request),
    /// The answer to a call.
    Response(Response),
    /// A plug-in's own message type.
    User(UserMsg),
    /// A transaction protocol message (2PC, 3PC, saga); see `components::txn`.
    Txn(TxnMsg),
    /// Replication between the replicas of a replicated store.
    Replica(ReplicaMsg),
    /// A partitioned log: brokers, consumers and group coordinators; see
    /// `components::data::topic`.
    Stream(StreamMsg),
    /// A cache purge passed from tier to tier; see `components::data::cache`.
    Purge(PurgeMsg),
}
