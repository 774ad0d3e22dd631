//! The kernel: simulated time, the event loop, and the one trait every node implements.
//!
//! ```text
//!   World::new(nodes, network, faults, limits)      assembly (crate::build does this)
//!        │
//!        ▼
//!   run(end) ── pop (time, seq) ──▶ Deliver ──▶ node.on_message(ctx, from, msg)
//!                               ├─▶ Timer   ──▶ node.on_timer(ctx, id, tag)
//!                               └─▶ Fault   ──▶ crash / restart / slowdown / cut links
//!        ctx.send / ctx.set_timer ──▶ network model ──▶ new events
//! ```
//!
//! Nodes are sans-IO state machines: they never call each other and never see the queue.
//! Everything they do goes through [`Ctx`]. The event loop is the only place that branches on
//! event kinds. Nothing here reads the OS clock or OS entropy.

pub mod budget;
pub mod dist;
pub mod network;
pub mod node_id;
pub mod queue;
pub mod rng;
pub mod shaping;
pub mod time;
pub mod zones;

pub use node_id::NodeId;

use budget::{Budget, show_bytes};
use network::{Cut, LinkChange, Network};
use queue::EventQueue;
use rng::{SimRng, mix64};
use std::fmt;
use time::{SimDuration, SimTime};

/// The vocabulary of a world: what its nodes send each other, what they record run-wide and
/// what they report at the end. The kernel carries all three and never looks inside, so a new
/// protocol family changes the vocabulary (the components' business), never the kernel.
pub trait Vocabulary: 'static {
    /// What nodes send each other.
    type Msg;
    /// The form of a message small enough to travel inside its queue entry (16 bytes at most,
    /// ideally with a niche, such as a box). Any other message waits in a side table while it
    /// is in flight, and its entry holds its slot there.
    type Inline;
    /// Run-wide accounting that nodes record into through [`Ctx::sink`] (for the built-in
    /// components: end-to-end request metrics). Handed back in the run's [`Outcome`].
    type Sink;
    /// What a node reports about itself at the end of a run ([`Node::finish`]).
    type Stats;

    /// `msg` in its inline form, or `msg` itself if it has none.
    fn to_inline(msg: Self::Msg) -> Result<Self::Inline, Self::Msg>;

    /// The message an inline form stands for.
    fn from_inline(inline: Self::Inline) -> Self::Msg;

    /// How many bytes `msg` puts on the wire, for links with a capacity. By default 0: a
    /// message takes no time to serialize. Only asked when some link has a capacity.
    fn size(_msg: &Self::Msg) -> u64 {
        0
    }

    /// `from` sent `msg` to `to` at `at`; it leaves at `departs` (after the sender's local
    /// delay) and arrives at `arrives`, or never (`None`: lost, or no route). Called only
    /// once [`World::watch_sends`] asked for it (per-request traces), so a run that does not
    /// trace pays one predictable branch per send.
    fn sent(_sink: &mut Self::Sink, _send: Sent, _msg: &Self::Msg) {}

    /// A second copy of `msg`, for a duplication fault; `None` (the default) if the message
    /// cannot be copied, and is then delivered once.
    fn duplicate(_msg: &Self::Msg) -> Option<Self::Msg> {
        None
    }

    /// Whether nothing the run waits for is left in `sink` (for the built-ins: no request in
    /// flight), so a drain may end early ([`World::end_drain_when_idle`]). Default: never.
    fn drained(_sink: &Self::Sink) -> bool {
        false
    }
}

/// A node: a state machine that reacts to start, messages, timers, crash and restart, in
/// vocabulary `V`.
///
/// Handlers act only through the [`Ctx`]: read the clock, send messages, set and cancel
/// timers, draw random numbers, record metrics.
pub trait Node<V: Vocabulary> {
    /// Called once at time zero, in node order.
    fn on_start(&mut self, ctx: &mut Ctx<'_, V>);

    /// A message arrived from `from`.
    fn on_message(&mut self, ctx: &mut Ctx<'_, V>, from: NodeId, msg: V::Msg);

    /// A timer set with [`Ctx::set_timer`] fired; `tag` is what was passed then.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, V>, timer: TimerId, tag: u64);

    /// The node crashed at `now`: drop all volatile state (queues, in-progress work, pending
    /// calls) and keep only what the component declares durable. It receives nothing until it
    /// restarts, and every timer it had set is gone.
    fn on_crash(&mut self, now: SimTime);

    /// The node crashed at `now` but its data survives: a process restart that recovers from
    /// disk. Work in progress is still lost (the process did stop: its timers die and it
    /// receives nothing until it restarts), but what the component holds as data (cache
    /// entries, stored values) may be kept. By default the same as [`Node::on_crash`].
    fn on_crash_keep_state(&mut self, now: SimTime) {
        self.on_crash(now);
    }

    /// The node restarts after a crash. By default it starts again as at time zero.
    fn on_restart(&mut self, ctx: &mut Ctx<'_, V>) {
        self.on_start(ctx);
    }

    /// End of the run at `now`: statistics for the report, if the node has any.
    fn finish(&mut self, _now: SimTime) -> Option<V::Stats> {
        None
    }
}

/// Handle of a timer, for cancelling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    slot: u32,
    generation: u32,
}

/// What the fault schedule does to the world at a point in time.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Crash these nodes (they restart when the fault ends).
    Crash(Vec<NodeId>),
    /// Multiply the service times of these nodes by `factor`.
    Slowdown(Vec<NodeId>, f64),
    /// Change latency and/or loss on some links (see [`network::LinkChange`]).
    LinkChange {
        /// Senders it applies to, by `NodeId` (empty: all).
        from: Vec<bool>,
        /// Receivers it applies to, by `NodeId` (empty: all).
        to: Vec<bool>,
        /// Latency to use instead.
        latency: Option<dist::Dist>,
        /// Loss probability to use instead.
        loss: Option<f64>,
    },
    /// Cut links between sides (see [`network::Cut`]).
    Partition {
        /// Side of each node, indexed by `NodeId`; 0 = not involved.
        side: Vec<u16>,
        /// Only side 1 → other sides is cut.
        one_way: bool,
    },
    /// Crash these nodes but let them keep their data ([`Node::on_crash_keep_state`]); they
    /// restart when the fault ends.
    CrashKeepState(Vec<NodeId>),
    /// Pause these nodes (a stop-the-world GC pause): messages that reach them and timers that
    /// fire wait, and are handled in their original order when the pause ends. Nothing is lost.
    Pause(Vec<NodeId>),
    /// Deliver a fraction of the messages on every link to or from the marked nodes (all links
    /// when the list is empty) twice.
    Duplicate {
        /// Nodes whose links are affected, by `NodeId` (empty: all).
        nodes: Vec<bool>,
        /// Probability that a message is duplicated.
        probability: f64,
    },
    /// Hold a fraction of the messages on every link to or from the marked nodes (all links
    /// when the list is empty) back by up to `window`, so later ones overtake them.
    Reorder {
        /// Nodes whose links are affected, by `NodeId` (empty: all).
        nodes: Vec<bool>,
        /// Probability that a message is held back.
        probability: f64,
        /// The longest a message is held back (uniform in (0, window]).
        window: SimDuration,
    },
    /// Change latency and/or loss on every link between a node of `a` and a node of `b`, in
    /// both directions.
    LinksBetween {
        /// One side, by `NodeId`.
        a: Vec<bool>,
        /// The other side, by `NodeId`.
        b: Vec<bool>,
        /// Latency to use instead.
        latency: Option<dist::Dist>,
        /// Loss probability to use instead.
        loss: Option<f64>,
    },
    /// Change latency and/or loss on every link to or from the marked nodes (all links when
    /// the list is empty).
    NodeLinks {
        /// Nodes whose links change, by `NodeId` (empty: all).
        nodes: Vec<bool>,
        /// Latency to use instead.
        latency: Option<dist::Dist>,
        /// Loss probability to use instead.
        loss: Option<f64>,
    },
}

/// A fault with its timing, resolved to node ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// What it does.
    pub action: FaultAction,
    /// When it starts.
    pub at: SimTime,
    /// When it ends, if it does.
    pub until: Option<SimTime>,
}

/// Bounds that stop a run cleanly instead of hanging or exhausting memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Most events one run may process.
    pub max_events: u64,
    /// Most events that may be pending at once (also bounds unbounded server queues).
    pub max_pending_events: usize,
    /// Most events in a row at one instant of simulated time: more means a loop of
    /// zero-delay messages or timers that would otherwise spin without time passing.
    pub max_events_per_instant: u64,
    /// Most bytes the structures that grow with load may hold (the event queue, and what
    /// components charge through [`Ctx::charge_memory`]: calls in flight, queues).
    pub max_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 2_000_000_000,
            max_pending_events: 20_000_000,
            max_events_per_instant: 10_000_000,
            max_memory: 1 << 30,
        }
    }
}

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    /// A limit from [`Limits`] was exceeded.
    Limit {
        /// Which limit (`limits.max_events`, ...).
        which: &'static str,
        /// Its value.
        limit: u64,
        /// Simulated time when it was exceeded.
        at: SimTime,
        /// Extra context, e.g. which node.
        detail: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Limit {
                which,
                limit,
                at,
                detail,
            } => write!(
                f,
                "run stopped at t={:.6}s: {which} ({limit}) exceeded{}{detail}; raise it in the \
                 scenario's `limits: (...)` if the model really needs that much",
                at.as_secs_f64(),
                if detail.is_empty() { "" } else { ": " },
            ),
        }
    }
}

impl std::error::Error for RunError {}

enum Event<V: Vocabulary> {
    Deliver {
        to: NodeId,
        from: NodeId,
        msg: V::Msg,
    },
    FaultStart(u32),
    FaultEnd(u32),
}

/// What waits for a paused node: a message (or fault) event, or a timer that came due (still
/// armed, in its slot).
enum Held<V: Vocabulary> {
    Event(Event<V>),
    Timer { slot: u32, tag: u64 },
}

/// What a queue entry carries, packed into 24 bytes so that an entry (with its time) is 32
/// (for an inline form of 16 bytes with a niche): a message with an inline form
/// ([`Vocabulary::to_inline`]) whole, and anything else as two words and a number. A message
/// without one (for the built-ins: a request, a response, a protocol message, up to 56 bytes)
/// waits in [`Io::bodies`] and the entry holds its slot there.
///
/// | kind            | `a`                   | `b`    | `body`           |
/// | --------------- | --------------------- | ------ | ---------------- |
/// | inline message  | receiver              | sender | `Inline(form)`   |
/// | other message   | receiver              | sender | `Word(slot)`     |
/// | timer           | `TIMER` \| node      | slot   | `Word(tag)`      |
/// | fault start/end | `FAULT_START`/`_END`  | fault  | `Word(0)`        |
///
/// The kind of a `Word` entry is in the top two bits of `a`, which node ids never reach
/// ([`World::new`] checks).
struct Queued<V: Vocabulary> {
    a: u32,
    b: u32,
    body: Body<V>,
}

/// The default is what a slot of the queue holds once its entry has been taken out: it is
/// never unpacked.
impl<V: Vocabulary> Default for Queued<V> {
    fn default() -> Queued<V> {
        Queued {
            a: 0,
            b: 0,
            body: Body::Word(0),
        }
    }
}

/// A message's inline form, or a number (16 bytes when the inline form is a box, whose
/// non-null pointer tells them apart).
enum Body<V: Vocabulary> {
    Inline(V::Inline),
    Word(u64),
}

const KIND_SHIFT: u32 = 30;
const NODE_MASK: u32 = (1 << KIND_SHIFT) - 1;
const TIMER: u32 = 1 << KIND_SHIFT;
const FAULT_START: u32 = 2 << KIND_SHIFT;
const FAULT_END: u32 = 3 << KIND_SHIFT;

/// A [`Queued`] entry, unpacked.
enum Unpacked<V: Vocabulary> {
    Inline {
        to: NodeId,
        from: NodeId,
        msg: V::Inline,
    },
    Parked {
        to: NodeId,
        from: NodeId,
        slot: u32,
    },
    Timer {
        node: NodeId,
        slot: u32,
        tag: u64,
    },
    FaultStart(u32),
    FaultEnd(u32),
}

impl<V: Vocabulary> Queued<V> {
    #[inline]
    fn inline(to: NodeId, from: NodeId, msg: V::Inline) -> Queued<V> {
        Queued {
            a: to.0,
            b: from.0,
            body: Body::Inline(msg),
        }
    }

    /// A message whose body is parked in slot `slot` of [`Io::bodies`].
    #[inline]
    fn parked(to: NodeId, from: NodeId, slot: u32) -> Queued<V> {
        Queued {
            a: to.0,
            b: from.0,
            body: Body::Word(slot.into()),
        }
    }

    /// Fault `index` starts (`FAULT_START`) or ends (`FAULT_END`).
    #[inline]
    fn fault(kind: u32, index: u32) -> Queued<V> {
        Queued {
            a: kind,
            b: index,
            body: Body::Word(0),
        }
    }

    #[inline]
    fn timer(node: NodeId, slot: u32, tag: u64) -> Queued<V> {
        Queued {
            a: TIMER | node.0,
            b: slot,
            body: Body::Word(tag),
        }
    }

    /// The timer slot, if this is a timer.
    #[inline]
    fn timer_slot(&self) -> Option<u32> {
        match self.body {
            Body::Word(_) if self.a & !NODE_MASK == TIMER => Some(self.b),
            _ => None,
        }
    }

    /// The node this entry is for (the receiver, or the timer's owner); `None` for a fault.
    fn node(&self) -> Option<NodeId> {
        match self.body {
            Body::Inline(_) => Some(NodeId(self.a)),
            Body::Word(_) => match self.a & !NODE_MASK {
                0 | TIMER => Some(NodeId(self.a & NODE_MASK)),
                _ => None,
            },
        }
    }

    #[inline]
    fn unpack(self) -> Unpacked<V> {
        match self.body {
            Body::Inline(msg) => Unpacked::Inline {
                to: NodeId(self.a),
                from: NodeId(self.b),
                msg,
            },
            Body::Word(w) => match self.a & !NODE_MASK {
                0 => Unpacked::Parked {
                    to: NodeId(self.a),
                    from: NodeId(self.b),
                    slot: w as u32,
                },
                TIMER => Unpacked::Timer {
                    node: NodeId(self.a & NODE_MASK),
                    slot: self.b,
                    tag: w,
                },
                FAULT_START => Unpacked::FaultStart(self.b),
                _ => Unpacked::FaultEnd(self.b),
            },
        }
    }
}

/// A timer's state, in 4 bytes. The rest of it (node, tag) travels in its queue entry, so a
/// slot stays taken until that entry is gone: cancelling only disarms it, and firing, a
/// cancelled entry reaching the front or a purge frees it.
///
/// The low 31 bits are the generation: odd while armed, bumped when the timer is set, fires
/// or is cancelled, so an old `TimerId` no longer matches. The top bit ([`TimerSlot::DEAD`])
/// marks an armed timer whose node crashed after setting it: a timer does not survive a crash.
/// It still reaches the front and counts as an event, as before the crash, but its node does
/// not hear of it.
struct TimerSlot(u32);

impl TimerSlot {
    const DEAD: u32 = 1 << 31;

    #[inline]
    fn armed(&self) -> bool {
        self.0 & 1 == 1
    }

    #[inline]
    fn dead(&self) -> bool {
        self.0 & Self::DEAD != 0
    }

    #[inline]
    fn generation(&self) -> u32 {
        self.0 & !Self::DEAD
    }

    /// Arm, disarm or free it: the next generation, alive.
    #[inline]
    fn bump(&mut self) {
        self.0 = self.generation().wrapping_add(1) & !Self::DEAD;
    }
}

/// Everything except the nodes themselves: what a [`Ctx`] gives access to.
struct Io<V: Vocabulary> {
    now: SimTime,
    /// Bumped whenever a fault starts or ends: only then can reachability change.
    topology_epoch: u64,
    queue: EventQueue<Queued<V>>,
    /// Bodies of queued messages without an inline form, by slot; freed slots are reused.
    bodies: slab::Slab<V::Msg>,
    timers: Vec<TimerSlot>,
    free_timers: Vec<u32>,
    network: Network,
    down_count: Vec<u32>,
    slowdown: Vec<f64>,
    /// Per node: how many pause faults hold it (pauses may overlap).
    paused: Vec<u32>,
    /// Per node: how many times it has restarted ([`Ctx::incarnation`]).
    restarts: Vec<u32>,
    /// Active faults that can hold or drop a delivery (crash, pause, partition): while there
    /// are none, a message is delivered without asking whether its node is up, paused or cut
    /// off.
    blocking_faults: u32,
    /// Whether sends are reported to the sink ([`Vocabulary::sent`]).
    watch_sends: bool,
    sink: V::Sink,
    limits: Limits,
    /// What the structures that grow with load hold, against `limits.max_memory`.
    budget: Budget,
    error: Option<RunError>,
    /// The node whose structure stopped the run, named in the error by [`World::run`].
    error_node: Option<NodeId>,
    /// Cancelled timers whose events are still in the queue.
    cancelled_in_queue: usize,
    /// Per node a crash fault can hit, the timers it set (see [`Armed`]); `None` for the
    /// others, which pay nothing for it.
    armed: Vec<Option<Box<Armed>>>,
}

/// The timers one node set, as (slot, generation), so that its crash marks them dead without
/// scanning the queue: O(its timers) per crash, not O(every pending event) (which made
/// 60,000 random crashes cost 30 times the rest of the run). Entries of timers that fired or
/// were cancelled are dropped when the list doubles, so it stays within twice the node's
/// armed timers (plus a floor).
#[derive(Debug)]
struct Armed {
    list: Vec<(u32, u32)>,
    compact_at: usize,
}

impl Armed {
    const FLOOR: usize = 64;

    #[inline]
    fn push(&mut self, slot: u32, generation: u32, timers: &[TimerSlot]) {
        self.list.push((slot, generation));
        if self.list.len() >= self.compact_at {
            self.list
                .retain(|&(s, g)| Self::is_armed(&timers[s as usize], g));
            self.compact_at = (2 * self.list.len()).max(Self::FLOOR);
        }
    }

    fn is_armed(t: &TimerSlot, generation: u32) -> bool {
        t.armed() && t.generation() == generation
    }
}

/// Purge cancelled timers from the queue once they are this many and at least half of it.
const PURGE_MIN: usize = 4096;

/// One message sent, as [`Vocabulary::sent`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The sender.
    pub from: NodeId,
    /// The destination.
    pub to: NodeId,
    /// When the sender sent it.
    pub at: SimTime,
    /// When it left, after the sender's local delay (`send_after`).
    pub departs: SimTime,
    /// When it arrives, or `None` if the network loses it.
    pub arrives: Option<SimTime>,
}

/// A node's window on the world while it handles one event.
pub struct Ctx<'a, V: Vocabulary> {
    io: &'a mut Io<V>,
    rng: &'a mut SimRng,
    me: NodeId,
}

impl<V: Vocabulary> Ctx<'_, V> {
    /// The current simulated time.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.io.now
    }

    /// This node's id.
    #[inline]
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This node's random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }

    /// Send `msg` to `to`; the network decides when (and whether) it arrives.
    #[inline]
    pub fn send(&mut self, to: NodeId, msg: V::Msg) {
        self.send_after(SimDuration::ZERO, to, msg);
    }

    /// Send `msg` to `to` once `delay` of local work has passed; the network transit follows.
    /// (The link is checked now: a partition that starts during `delay` still drops it on
    /// arrival.)
    #[inline]
    pub fn send_after(&mut self, delay: SimDuration, to: NodeId, msg: V::Msg) {
        if self.io.network.shaped() {
            self.send_shaped(delay, to, msg);
            return;
        }
        let transit = self.io.network.transit(self.me, to);
        if self.io.watch_sends {
            self.report_send(
                delay,
                to,
                &msg,
                transit.map(|t| self.io.now.after(delay).after(t)),
            );
        }
        if let Some(transit) = transit {
            let at = self.io.now.after(delay).after(transit);
            self.io.push(
                at,
                Event::Deliver {
                    to,
                    from: self.me,
                    msg,
                },
            );
        }
    }

    /// [`Ctx::send_after`] when a link has a capacity or a message fault is active: the
    /// message's size counts, and a duplicate may follow it.
    #[inline(never)]
    fn send_shaped(&mut self, delay: SimDuration, to: NodeId, msg: V::Msg) {
        let sent = self.io.now.after(delay);
        let copy = V::duplicate(&msg);
        let (first, second) =
            self.io
                .network
                .deliveries(self.me, to, sent, V::size(&msg), copy.is_some());
        let from = self.me;
        if self.io.watch_sends {
            self.report_send(delay, to, &msg, first);
        }
        if let (Some(at), Some(msg)) = (second, copy) {
            self.io.push(at, Event::Deliver { to, from, msg });
        }
        if let Some(at) = first {
            self.io.push(at, Event::Deliver { to, from, msg });
        }
    }

    /// Tell the sink about a send ([`Vocabulary::sent`]).
    #[inline(never)]
    fn report_send(
        &mut self,
        delay: SimDuration,
        to: NodeId,
        msg: &V::Msg,
        arrives: Option<SimTime>,
    ) {
        let send = Sent {
            from: self.me,
            to,
            at: self.io.now,
            departs: self.io.now.after(delay),
            arrives,
        };
        V::sent(&mut self.io.sink, send, msg);
    }

    /// The time a round trip to `to` and back takes now (two small messages, such as a
    /// connection handshake's), or `None` if either is lost or a partition is in the way.
    /// Draws from the network's stream, like a send.
    pub fn round_trip(&mut self, to: NodeId) -> Option<SimDuration> {
        self.io.network.round_trip(self.me, to)
    }

    /// How many times `node` has restarted after a crash: state another node keeps about it
    /// (an open connection, a session) belongs to one incarnation and is gone after a restart.
    #[inline]
    pub fn incarnation(&self, node: NodeId) -> u32 {
        self.io.restarts[node.idx()]
    }

    /// Whether a message sent now could reach `to`: it is up and no partition is in the way.
    /// Models connection-level knowledge (a refused or unroutable connection), not loss.
    #[inline]
    pub fn reachable(&self, to: NodeId) -> bool {
        self.io.is_up(to) && self.io.network.connected(self.me, to)
    }

    /// A number that changes whenever reachability may have changed (a fault started or
    /// ended). A node may cache what it computed from [`Ctx::reachable`] while it stays the
    /// same, instead of asking again for every request.
    #[inline]
    pub fn topology_epoch(&self) -> u64 {
        self.io.topology_epoch
    }

    /// Call [`Node::on_timer`] with `tag` after `after`.
    #[inline]
    pub fn set_timer(&mut self, after: SimDuration, tag: u64) -> TimerId {
        let slot = match self.io.free_timers.pop() {
            Some(s) => s,
            None => {
                self.io.timers.push(TimerSlot(0));
                (self.io.timers.len() - 1) as u32
            }
        };
        let t = &mut self.io.timers[slot as usize];
        debug_assert!(!t.armed());
        t.bump();
        let id = TimerId {
            slot,
            generation: t.generation(),
        };
        let at = self.io.now.after(after);
        self.io.queue.push(at.0, Queued::timer(self.me, slot, tag));
        if let Some(a) = self.io.armed[self.me.idx()].as_deref_mut() {
            a.push(slot, id.generation, &self.io.timers);
        }
        id
    }

    /// Cancel a timer; cancelling one that already fired or was cancelled does nothing.
    #[inline]
    pub fn cancel_timer(&mut self, id: TimerId) {
        if self.io.release_timer(id) {
            self.io.cancelled_in_queue += 1;
            if self.io.cancelled_in_queue >= PURGE_MIN
                && self.io.cancelled_in_queue * 2 >= self.io.queue.len()
            {
                self.io.purge_cancelled();
            }
        }
    }

    /// Factor by which this node's work is currently slowed (1.0 = normal speed).
    #[inline]
    pub fn slowdown(&self) -> f64 {
        self.io.slowdown[self.me.idx()]
    }

    /// The run-wide accounting this node records into (see [`Vocabulary::Sink`]).
    #[inline]
    pub fn sink(&mut self) -> &mut V::Sink {
        &mut self.io.sink
    }

    /// Stop the run: a component hit a bound it cannot honour (e.g. an unbounded queue grew
    /// past `limits.max_pending_events`).
    pub fn exceed_limit(&mut self, which: &'static str, limit: u64, detail: String) {
        if self.io.error.is_none() {
            let at = self.io.now;
            self.io.error = Some(RunError::Limit {
                which,
                limit,
                at,
                detail,
            });
        }
    }

    /// The run's bounds.
    pub fn limits(&self) -> Limits {
        self.io.limits
    }

    /// A structure of this node that grows with load (`what`: "calls in flight", "queued
    /// requests") grew by `bytes` and now holds `count` items. Call it when its capacity grows,
    /// not per item. Past `limits.max_memory` the run stops with an error naming this node,
    /// `what` and `fix` (how to bound it: "set `queue_limit`").
    #[cold]
    #[inline(never)]
    pub fn charge_memory(&mut self, bytes: usize, what: &str, count: usize, fix: &str) {
        let io = &mut *self.io;
        io.budget.charge(bytes as u64);
        let kernel = io.kernel_bytes(0);
        if io.budget.fits(kernel, io.queue.len()) || io.error.is_some() {
            return;
        }
        let detail = format!(
            "its {what} grew to {count} ({} charged by all nodes, {} in the event queue); {fix}",
            show_bytes(io.budget.charged()),
            show_bytes(kernel)
        );
        io.error = Some(RunError::Limit {
            which: "limits.max_memory",
            limit: io.budget.max(),
            at: io.now,
            detail,
        });
        io.error_node = Some(self.me);
    }
}

impl<V: Vocabulary> Io<V> {
    /// Bytes the kernel holds for pending events (the queue, parked bodies, timer slots) and
    /// `held` events waiting for paused nodes: capacities, measured on the cold path.
    fn kernel_bytes(&self, held: usize) -> u64 {
        use std::mem::size_of;
        let bodies = self.bodies.capacity() * (size_of::<V::Msg>() + size_of::<usize>());
        let timers = (self.timers.capacity() + self.free_timers.capacity()) * size_of::<u32>();
        (self.queue.heap_bytes() + bodies + timers + held * size_of::<Held<V>>()) as u64
    }

    /// A node is up unless a crash fault holds it down (crashes may overlap).
    #[inline]
    fn is_up(&self, id: NodeId) -> bool {
        self.down_count[id.idx()] == 0
    }

    #[inline(always)]
    fn push(&mut self, at: SimTime, ev: Event<V>) {
        let q = match ev {
            Event::Deliver { to, from, msg } => match V::to_inline(msg) {
                Ok(inline) => Queued::inline(to, from, inline),
                Err(msg) => {
                    let slot =
                        u32::try_from(self.bodies.insert(msg)).expect("< 2^32 queued messages");
                    Queued::parked(to, from, slot)
                }
            },
            Event::FaultStart(i) => Queued::fault(FAULT_START, i),
            Event::FaultEnd(i) => Queued::fault(FAULT_END, i),
        };
        self.queue.push(at.0, q);
    }

    /// Take a queued message's body out of its slot, which is free again.
    #[inline]
    fn unpark(&mut self, slot: u32) -> V::Msg {
        self.bodies.remove(slot as usize)
    }

    /// A timer's queue entry is gone (fired, dropped or purged): its slot is free again, and an
    /// old `TimerId` for it no longer matches.
    #[inline]
    fn free_timer_slot(&mut self, slot: u32) {
        let t = &mut self.timers[slot as usize];
        if t.armed() {
            t.bump();
        }
        self.free_timers.push(slot);
    }

    /// Disarm a timer; false if it already fired or was cancelled. Its queue entry stays (and
    /// keeps the slot) until it reaches the front or a purge drops it.
    #[inline]
    fn release_timer(&mut self, id: TimerId) -> bool {
        let t = &mut self.timers[id.slot as usize];
        if t.generation() == id.generation && t.armed() {
            t.bump();
            true
        } else {
            false
        }
    }

    /// Mark `node`'s armed timers dead (it crashed): those it set, from its list.
    fn kill_timers(&mut self, node: NodeId) {
        let timers = &mut self.timers;
        if let Some(a) = self.armed[node.idx()].as_deref_mut() {
            for (slot, generation) in a.list.drain(..) {
                let t = &mut timers[slot as usize];
                if Armed::is_armed(t, generation) {
                    t.0 |= TimerSlot::DEAD;
                }
            }
            a.compact_at = Armed::FLOOR;
            return;
        }
        // A node no crash fault names cannot crash; scanning the queue keeps this right
        // should that ever change.
        self.queue.for_each(|q| {
            if let Some(slot) = q.timer_slot()
                && q.a & NODE_MASK == node.0
                && timers[slot as usize].armed()
            {
                timers[slot as usize].0 |= TimerSlot::DEAD;
            }
        });
    }

    /// Drop the events of cancelled timers. Cancellation is lazy (O(1)): a cancelled timer's
    /// event stays queued until it would fire. Timeouts are usually cancelled, so without this
    /// the queue would hold rate × timeout dead events; purging when they are half the queue
    /// keeps it within twice the live events at amortised O(1) per cancel. The order of the
    /// remaining events is their (time, sequence) key, so purging changes no outcome.
    fn purge_cancelled(&mut self) {
        let (timers, free) = (&self.timers, &mut self.free_timers);
        self.queue.retain(|q| match q.timer_slot() {
            Some(slot) if !timers[slot as usize].armed() => {
                free.push(slot);
                false
            }
            _ => true,
        });
        self.cancelled_in_queue = 0;
    }
}

/// Which of `n` nodes a fault of `faults` can crash.
fn may_crash(faults: &[Fault], n: usize) -> Vec<bool> {
    let mut out = vec![false; n];
    for f in faults {
        if let FaultAction::Crash(nodes) | FaultAction::CrashKeepState(nodes) = &f.action {
            for id in nodes {
                out[id.idx()] = true;
            }
        }
    }
    out
}

/// A node with its name and its random stream.
pub struct Slot<N> {
    /// Unique node name (`app-2`).
    pub name: String,
    /// The state machine.
    pub node: N,
    /// Its random stream, derived from (seed, name).
    pub rng: SimRng,
}

/// What a finished run hands to the runner.
pub struct Outcome<V: Vocabulary> {
    /// Events processed.
    pub events: u64,
    /// Digest of the event trace (time, node and kind of every event).
    pub digest: u64,
    /// The run-wide accounting the nodes recorded into.
    pub sink: V::Sink,
    /// Per-node statistics, by node name, in node order.
    pub node_stats: Vec<(String, V::Stats)>,
    /// Simulated time when the run ended.
    pub end: SimTime,
}

/// A world ready to run: nodes, network, fault schedule and bounds.
pub struct World<V: Vocabulary, N: Node<V>> {
    nodes: Vec<Slot<N>>,
    io: Io<V>,
    faults: Vec<Fault>,
    /// Per node: the events that reached it while it was paused, in arrival order.
    held: Vec<Vec<Held<V>>>,
    held_len: usize,
    /// From this time on the run ends as soon as [`Vocabulary::drained`] says so.
    early_end_from: SimTime,
    events: u64,
    digest: u64,
    instant: SimTime,
    instant_events: u64,
}

impl<V: Vocabulary, N: Node<V>> World<V, N> {
    /// Assemble a world. Node ids are indices into `nodes`; `sink` is the run-wide accounting
    /// they record into.
    pub fn new(
        nodes: Vec<Slot<N>>,
        network: Network,
        faults: Vec<Fault>,
        limits: Limits,
        sink: V::Sink,
    ) -> Self {
        let n = nodes.len();
        assert!(
            n <= NODE_MASK as usize + 1,
            "a world holds at most 2^30 nodes (queue entries keep their kind above the node id)"
        );
        let mut io = Io {
            topology_epoch: 0,
            now: SimTime::ZERO,
            queue: EventQueue::new(),
            bodies: slab::Slab::new(),
            timers: Vec::new(),
            free_timers: Vec::new(),
            network,
            down_count: vec![0; n],
            slowdown: vec![1.0; n],
            paused: vec![0; n],
            restarts: vec![0; n],
            blocking_faults: 0,
            watch_sends: false,
            sink,
            limits,
            budget: Budget::new(
                limits.max_memory,
                limits.max_pending_events,
                budget::per_pending_event(
                    EventQueue::<Queued<V>>::ENTRY_BYTES,
                    std::mem::size_of::<V::Msg>(),
                ),
            ),
            error: None,
            error_node: None,
            cancelled_in_queue: 0,
            armed: may_crash(&faults, n)
                .into_iter()
                .map(|c| {
                    c.then(|| {
                        Box::new(Armed {
                            list: Vec::new(),
                            compact_at: Armed::FLOOR,
                        })
                    })
                })
                .collect(),
        };
        for (i, f) in faults.iter().enumerate() {
            io.push(f.at, Event::FaultStart(i as u32));
            if let Some(until) = f.until {
                io.push(until, Event::FaultEnd(i as u32));
            }
        }
        World {
            nodes,
            io,
            faults,
            held: (0..n).map(|_| Vec::new()).collect(),
            held_len: 0,
            early_end_from: SimTime(u64::MAX),
            events: 0,
            digest: 0,
            instant: SimTime::ZERO,
            instant_events: 0,
        }
    }

    /// Report every send to the sink from now on ([`Vocabulary::sent`]).
    pub fn watch_sends(&mut self) {
        self.io.watch_sends = true;
    }

    /// The run-wide accounting, to configure before the run (such as tracing).
    pub fn sink_mut(&mut self) -> &mut V::Sink {
        &mut self.io.sink
    }

    /// From `from` on, end the run at the first event after the sink is drained
    /// ([`Vocabulary::drained`]): a drain as long as a huge timeout, with periodic timers
    /// ticking through it, ends once nothing is left to wait for.
    pub fn end_drain_when_idle(&mut self, from: SimTime) {
        self.early_end_from = from;
    }

    /// Run until no event is pending or the next one is after `end` (or, past
    /// [`World::end_drain_when_idle`], until the sink is drained).
    pub fn run(mut self, end: SimTime) -> Result<Outcome<V>, RunError> {
        for i in 0..self.nodes.len() {
            self.with_node(NodeId(i as u32), |node, ctx| node.on_start(ctx));
        }
        // One comparison per event covers both ends; past the early one, every event asks.
        let mut stop = end.0.min(self.early_end_from.0);
        while let Some((t, queued)) = self.io.queue.pop() {
            if t > stop {
                if t > end.0 || V::drained(&self.io.sink) {
                    break;
                }
                stop = t;
            }
            let t = SimTime(t);
            match queued.unpack() {
                Unpacked::Inline { to, from, msg } => {
                    self.deliver(t, to, from, V::from_inline(msg))
                }
                Unpacked::Parked { to, from, slot } => {
                    let msg = self.io.unpark(slot);
                    self.deliver(t, to, from, msg);
                }
                Unpacked::Timer { node, slot, tag } => self.timer(t, node, slot, tag),
                Unpacked::FaultStart(i) => self.step(t, Event::FaultStart(i)),
                Unpacked::FaultEnd(i) => self.step(t, Event::FaultEnd(i)),
            }
            if self.io.error.is_some() {
                return Err(self.take_error());
            }
        }
        let now = self.io.now;
        Ok(self.finish(now))
    }

    #[inline]
    fn advance(&mut self, t: SimTime) {
        assert!(
            t >= self.io.now,
            "time went back from {:?} to {t:?}",
            self.io.now
        );
        self.io.now = t;
    }

    /// `node`'s timer in `slot` reached the front of the queue at `t`.
    fn timer(&mut self, t: SimTime, node: NodeId, slot: u32, tag: u64) {
        self.advance(t);
        let timer = &self.io.timers[slot as usize];
        let (live, dead) = (timer.armed(), timer.dead());
        let id = TimerId {
            slot,
            generation: timer.generation(),
        };
        if !live {
            // A cancelled timer's event reached the front before a purge did: not an event.
            self.io.free_timer_slot(slot);
            self.io.cancelled_in_queue = self.io.cancelled_in_queue.saturating_sub(1);
            return;
        }
        self.events += 1;
        if self.over_limit(t) {
            self.io.free_timer_slot(slot);
            return;
        }
        if self.io.paused[node.idx()] > 0 {
            // A paused node's timer fires late: it stays armed, in its slot, until the pause
            // ends and it is queued again.
            self.hold(node, Held::Timer { slot, tag });
            return;
        }
        // Its queue entry is gone: the slot is free again, and an old id no longer matches.
        self.io.free_timer_slot(slot);
        // Timers set before a crash die with it.
        if !dead && self.io.is_up(node) {
            self.trace(t, node.0 as u64, 2);
            self.with_node(node, |n, ctx| n.on_timer(ctx, id, tag));
        }
    }

    /// A message reaches `to` at `t`: inline while no fault that can block delivery (crash,
    /// pause, partition) is active, through [`World::step`] otherwise.
    #[inline(always)]
    fn deliver(&mut self, t: SimTime, to: NodeId, from: NodeId, msg: V::Msg) {
        if self.io.blocking_faults != 0 {
            self.step(t, Event::Deliver { to, from, msg });
            return;
        }
        self.advance(t);
        self.events += 1;
        if self.over_limit(t) {
            return;
        }
        self.trace(t, to.0 as u64, 1);
        self.with_node(to, |node, ctx| node.on_message(ctx, from, msg));
    }

    fn step(&mut self, t: SimTime, ev: Event<V>) {
        self.advance(t);
        self.events += 1;
        if self.over_limit(t) {
            return;
        }
        match ev {
            // While a crash, pause or partition is active ([`World::deliver`] takes the rest).
            Event::Deliver { to, from, msg } => {
                if self.io.paused[to.idx()] > 0
                    && self.io.is_up(to)
                    && self.io.network.connected(from, to)
                {
                    self.hold(to, Held::Event(Event::Deliver { to, from, msg }));
                    return;
                }
                self.trace(t, to.0 as u64, 1);
                if self.io.is_up(to) && self.io.network.connected(from, to) {
                    self.with_node(to, |node, ctx| node.on_message(ctx, from, msg));
                }
            }
            Event::FaultStart(i) => {
                self.trace(t, i as u64, 3);
                self.fault(i as usize, true);
            }
            Event::FaultEnd(i) => {
                self.trace(t, i as u64, 4);
                self.fault(i as usize, false);
            }
        }
    }

    /// Check the run's bounds before handling an event at `t`; record the error if one is hit.
    #[inline(always)]
    fn over_limit(&mut self, t: SimTime) -> bool {
        if t == self.instant {
            self.instant_events += 1;
        } else {
            (self.instant, self.instant_events) = (t, 1);
        }
        let l = &self.io.limits;
        // `pending_cap` is at most `max_pending_events`, and lower when fewer pending events
        // fit in the memory budget: one comparison covers both.
        if self.events <= l.max_events
            && self.io.queue.len() + self.held_len <= self.io.budget.pending_cap
            && self.instant_events <= l.max_events_per_instant
        {
            return false;
        }
        self.limit_hit(t)
    }

    /// A bound of [`Limits`] may have been exceeded at `t`: record which and return true, or
    /// return false when the pending events only passed the point where the memory budget is
    /// measured again, and still fit.
    #[cold]
    #[inline(never)]
    fn limit_hit(&mut self, t: SimTime) -> bool {
        let l = self.io.limits;
        let pending = self.io.queue.len() + self.held_len;
        let (which, limit, detail) = if self.events > l.max_events {
            ("limits.max_events", l.max_events, String::new())
        } else if pending > l.max_pending_events {
            (
                "limits.max_pending_events",
                l.max_pending_events as u64,
                String::new(),
            )
        } else if pending > self.io.budget.pending_cap {
            let kernel = self.io.kernel_bytes(self.held_len);
            if self.io.budget.fits(kernel, pending) {
                return false;
            }
            (
                "limits.max_memory",
                l.max_memory,
                self.queue_overrun(kernel),
            )
        } else {
            let why = "events keep happening without simulated time passing (a loop of zero-delay \
                       messages or timers?)";
            (
                "limits.max_events_per_instant",
                l.max_events_per_instant,
                why.to_string(),
            )
        };
        self.io.error = Some(RunError::Limit {
            which,
            limit,
            at: t,
            detail,
        });
        true
    }

    /// What filled the event queue past the memory budget: its size, and the node most of its
    /// events are for.
    fn queue_overrun(&self, kernel: u64) -> String {
        let mut per_node = vec![0usize; self.nodes.len()];
        self.io.queue.for_each(|q| {
            if let Some(node) = q.node() {
                per_node[node.idx()] += 1;
            }
        });
        let busiest = (0..per_node.len()).max_by_key(|&i| (per_node[i], usize::MAX - i));
        let whose = busiest.map_or(String::new(), |i| {
            format!(", {} of them for \"{}\"", per_node[i], self.nodes[i].name)
        });
        format!(
            "the event queue grew to {} pending events ({}){whose}, beside {} charged by \
             nodes; bound the work in flight (a `queue_limit`, shorter timeouts, a lower \
             arrival rate) or a shorter `duration`",
            self.io.queue.len() + self.held_len,
            show_bytes(kernel),
            show_bytes(self.io.budget.charged())
        )
    }

    /// The error that stopped the run, naming the node whose structure grew if one did.
    fn take_error(&mut self) -> RunError {
        let mut e = self.io.error.take().expect("an error was recorded");
        if let (Some(id), RunError::Limit { detail, .. }) = (self.io.error_node.take(), &mut e) {
            *detail = format!("node \"{}\": {detail}", self.nodes[id.idx()].name);
        }
        e
    }

    #[inline]
    fn trace(&mut self, t: SimTime, who: u64, kind: u64) {
        self.digest = mix64(self.digest ^ t.0.rotate_left(17) ^ (who << 3) ^ kind);
    }

    #[inline]
    fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut N, &mut Ctx<'_, V>)) {
        let slot = &mut self.nodes[id.idx()];
        let mut ctx = Ctx {
            io: &mut self.io,
            rng: &mut slot.rng,
            me: id,
        };
        f(&mut slot.node, &mut ctx);
    }

    fn fault(&mut self, i: usize, start: bool) {
        self.io.topology_epoch += 1;
        let action = self.faults[i].action.clone();
        if matches!(
            action,
            FaultAction::Crash(_)
                | FaultAction::CrashKeepState(_)
                | FaultAction::Pause(_)
                | FaultAction::Partition { .. }
        ) {
            if start {
                self.io.blocking_faults += 1;
            } else {
                self.io.blocking_faults -= 1;
            }
        }
        match action {
            FaultAction::Crash(nodes) => {
                for id in nodes {
                    if start {
                        self.crash(id);
                    } else {
                        self.restart(id);
                    }
                }
            }
            FaultAction::Slowdown(nodes, factor) => {
                for id in nodes {
                    let s = &mut self.io.slowdown[id.idx()];
                    *s = if start { *s * factor } else { *s / factor };
                }
            }
            FaultAction::LinkChange {
                from,
                to,
                latency,
                loss,
            } => {
                if start {
                    let change = LinkChange {
                        fault: i,
                        from,
                        to,
                        latency,
                        loss,
                    };
                    self.io.network.add_change(change);
                } else {
                    self.io.network.remove_change(i);
                }
            }
            FaultAction::Partition { side, one_way } => {
                if start {
                    self.io.network.add_cut(Cut {
                        fault: i,
                        side,
                        one_way,
                    });
                } else {
                    self.io.network.remove_cut(i);
                }
            }
            FaultAction::CrashKeepState(nodes) => {
                for id in nodes {
                    if start {
                        self.crash_as(id, true);
                    } else {
                        self.restart(id);
                    }
                }
            }
            FaultAction::Pause(nodes) => {
                for id in nodes {
                    if start {
                        self.io.paused[id.idx()] += 1;
                    } else {
                        self.resume(id);
                    }
                }
            }
            FaultAction::NodeLinks {
                nodes,
                latency,
                loss,
            } => self.node_links(i, start, nodes, latency, loss),
            FaultAction::Duplicate { nodes, probability } => {
                self.mangle(i, start, nodes, probability, None)
            }
            FaultAction::Reorder {
                nodes,
                probability,
                window,
            } => self.mangle(i, start, nodes, probability, Some(window)),
            FaultAction::LinksBetween {
                a,
                b,
                latency,
                loss,
            } => self.links_between(i, start, [a, b], latency, loss),
        }
    }

    /// A duplication fault (no `window`) or a reordering fault starts or ends.
    fn mangle(
        &mut self,
        i: usize,
        start: bool,
        nodes: Vec<bool>,
        probability: f64,
        window: Option<SimDuration>,
    ) {
        let net = &mut self.io.network;
        if !start {
            net.remove_mangle(i);
            return;
        }
        let m = shaping::Mangle {
            fault: i,
            nodes,
            probability,
            window: window.unwrap_or_default(),
        };
        net.add_mangle(m, window.is_some());
    }

    /// The links between two sets of nodes change both ways: two link changes under one
    /// fault index, so the fault's end removes both.
    fn links_between(
        &mut self,
        i: usize,
        start: bool,
        [a, b]: [Vec<bool>; 2],
        latency: Option<dist::Dist>,
        loss: Option<f64>,
    ) {
        let net = &mut self.io.network;
        if !start {
            net.remove_change(i);
            return;
        }
        for (from, to) in [(a.clone(), b.clone()), (b, a)] {
            let latency = latency.clone();
            net.add_change(LinkChange {
                fault: i,
                from,
                to,
                latency,
                loss,
            });
        }
    }

    /// Change the links to and from some nodes (all links when `nodes` is empty): two link
    /// changes under one fault index, so the fault's end removes both.
    fn node_links(
        &mut self,
        i: usize,
        start: bool,
        nodes: Vec<bool>,
        latency: Option<dist::Dist>,
        loss: Option<f64>,
    ) {
        if !start {
            self.io.network.remove_change(i);
            return;
        }
        let outgoing = LinkChange {
            fault: i,
            from: nodes.clone(),
            to: Vec::new(),
            latency: latency.clone(),
            loss,
        };
        let all = nodes.is_empty();
        self.io.network.add_change(outgoing);
        if !all {
            let incoming = LinkChange {
                fault: i,
                from: Vec::new(),
                to: nodes,
                latency,
                loss,
            };
            self.io.network.add_change(incoming);
        }
    }

    /// Keep an event for a paused node until it resumes.
    fn hold(&mut self, id: NodeId, ev: Held<V>) {
        self.held[id.idx()].push(ev);
        self.held_len += 1;
    }

    /// A pause fault ends: once no pause holds the node, what waited is handled now, in order.
    fn resume(&mut self, id: NodeId) {
        let i = id.idx();
        self.io.paused[i] -= 1;
        if self.io.paused[i] > 0 {
            return;
        }
        let now = self.io.now;
        let held = std::mem::take(&mut self.held[i]);
        self.held_len -= held.len();
        for h in held {
            match h {
                Held::Event(ev) => self.io.push(now, ev),
                Held::Timer { slot, tag } => {
                    self.io.queue.push(now.0, Queued::timer(id, slot, tag));
                }
            }
        }
    }

    /// A crash drops what waited for a paused node: the messages die with the process, and
    /// the timers die with it.
    fn drop_held(&mut self, id: NodeId) {
        let held = std::mem::take(&mut self.held[id.idx()]);
        self.held_len -= held.len();
        for h in held {
            if let Held::Timer { slot, .. } = h {
                // Out of the queue and dead with the crash: free the slot.
                self.io.free_timer_slot(slot);
            }
        }
    }

    fn crash(&mut self, id: NodeId) {
        self.crash_as(id, false);
    }

    fn crash_as(&mut self, id: NodeId, keep_state: bool) {
        let i = id.idx();
        self.io.down_count[i] += 1;
        if self.io.down_count[i] == 1 {
            // Timers set before the crash die with it: marked now, dropped on firing.
            self.io.kill_timers(id);
            if !self.held[i].is_empty() {
                self.drop_held(id);
            }
            let now = self.io.now;
            let node = &mut self.nodes[i].node;
            if keep_state {
                node.on_crash_keep_state(now);
            } else {
                node.on_crash(now);
            }
        }
    }

    fn restart(&mut self, id: NodeId) {
        let i = id.idx();
        // A restart always ends a crash fault that started earlier, so the count is positive.
        self.io.down_count[i] -= 1;
        if self.io.down_count[i] == 0 {
            self.io.restarts[i] += 1;
            self.with_node(id, |node, ctx| node.on_restart(ctx));
        }
    }

    fn finish(mut self, now: SimTime) -> Outcome<V> {
        let node_stats = self
            .nodes
            .iter_mut()
            .filter_map(|s| s.node.finish(now).map(|st| (s.name.clone(), st)))
            .collect();
        Outcome {
            events: self.events,
            digest: self.digest,
            sink: self.io.sink,
            node_stats,
            end: now,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for a world without nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vocabulary whose messages are boxes (inline) or numbers (parked).
    struct Boxes;

    impl Vocabulary for Boxes {
        type Msg = Result<Box<dyn std::any::Any + Send>, u64>;
        type Inline = Box<dyn std::any::Any + Send>;
        type Sink = ();
        type Stats = ();

        fn to_inline(msg: Self::Msg) -> Result<Self::Inline, Self::Msg> {
            msg.map_err(Err)
        }

        fn from_inline(inline: Self::Inline) -> Self::Msg {
            Ok(inline)
        }
    }

    /// What the kernel queues fits a 32-byte entry, and every kind unpacks to what was packed,
    /// up to the largest node id.
    #[test]
    fn queued_events_pack_into_32_byte_entries() {
        type Queued = super::Queued<Boxes>;
        assert_eq!(EventQueue::<Queued>::ENTRY_BYTES, 32);
        let top = NodeId(NODE_MASK);
        match Queued::timer(top, 7, u64::MAX).unpack() {
            Unpacked::Timer { node, slot, tag } => {
                assert_eq!((node, slot, tag), (top, 7, u64::MAX))
            }
            _ => panic!("expected a timer"),
        }
        match Queued::parked(top, NodeId(6), 9).unpack() {
            Unpacked::Parked { to, from, slot } => {
                assert_eq!((to, from, slot), (top, NodeId(6), 9))
            }
            _ => panic!("expected a parked message"),
        }
        match Queued::inline(NodeId(3), top, Box::new(42u8)).unpack() {
            Unpacked::Inline { to, from, msg } => {
                assert_eq!((to, from), (NodeId(3), top));
                assert_eq!(msg.downcast_ref::<u8>(), Some(&42));
            }
            _ => panic!("expected an inline message"),
        }
        for (a, start) in [(FAULT_START, true), (FAULT_END, false)] {
            match (Queued::fault(a, 11).unpack(), start) {
                (Unpacked::FaultStart(11), true) | (Unpacked::FaultEnd(11), false) => {}
                _ => panic!("expected fault 11"),
            }
        }
        assert_eq!(Queued::timer(top, 4, 0).timer_slot(), Some(4));
        assert_eq!(Queued::default().timer_slot(), None);
    }
}
