//! The table of calls a node has in flight, keyed by the [`CallId`]s it hands out.
//!
//! A `CallId` packs a slot index (low 32 bits) and the slot's generation (high 32 bits), so a
//! lookup is an index, and an answer that arrives after its call was closed (timed out,
//! forgotten in a crash) finds a newer generation and is recognised as late.

use crate::components::message::{Ctx, Message};
use crate::contract::call::{CallId, Cause, RequestId, Response};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::{NodeId, TimerId};

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Calls in flight, each with the caller's bookkeeping `T`.
pub struct CallTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

impl<T> Default for CallTable<T> {
    fn default() -> Self {
        CallTable {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

/// How to bound a table of calls that outgrew the memory budget.
const BOUND_CALLS: &str = "bound the calls in flight: a shorter `timeout`, a lower arrival rate, \
                           or a `queue_limit` on the servers behind it";

impl<T> CallTable<T> {
    /// Open a call; `make` builds its entry knowing the `CallId` (e.g. to tag its timer). A
    /// table that grows is charged to the run's memory budget (`limits.max_memory`).
    pub fn open(
        &mut self,
        ctx: &mut Ctx<'_>,
        make: impl FnOnce(&mut Ctx<'_>, CallId) -> T,
    ) -> CallId {
        let (slot, added) = self.take_slot();
        if added > 0 {
            // The free list may come to hold every slot: it is charged with them.
            let bytes = added * (std::mem::size_of::<Slot<T>>() + std::mem::size_of::<u32>());
            ctx.charge_memory(bytes, "calls in flight", self.slots.len(), BOUND_CALLS);
        }
        let call = self.id_of(slot);
        self.slots[slot as usize].value = Some(make(ctx, call));
        call
    }

    /// A free slot, and how many slots the table's allocation grew by to find it.
    fn take_slot(&mut self) -> (u32, usize) {
        if let Some(slot) = self.free.pop() {
            return (slot, 0);
        }
        let before = self.slots.capacity();
        self.slots.push(Slot {
            generation: 0,
            value: None,
        });
        (
            (self.slots.len() - 1) as u32,
            self.slots.capacity() - before,
        )
    }

    fn id_of(&self, slot: u32) -> CallId {
        CallId(((self.slots[slot as usize].generation as u64) << 32) | slot as u64)
    }

    /// Open a call holding `value` without a budget to charge (unit tests).
    #[cfg(test)]
    fn open_plain(&mut self, value: T) -> CallId {
        let (slot, _) = self.take_slot();
        self.slots[slot as usize].value = Some(value);
        self.id_of(slot)
    }

    /// Close a call and return its entry, or `None` if it is no longer open.
    pub fn close(&mut self, call: CallId) -> Option<T> {
        let slot = (call.0 & 0xffff_ffff) as usize;
        let s = self
            .slots
            .get_mut(slot)
            .filter(|s| s.generation == (call.0 >> 32) as u32)?;
        let value = s.value.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot as u32);
        Some(value)
    }

    /// The entry of an open call, or `None` if it is no longer open.
    pub fn get_mut(&mut self, call: CallId) -> Option<&mut T> {
        let slot = (call.0 & 0xffff_ffff) as usize;
        self.slots
            .get_mut(slot)
            .filter(|s| s.generation == (call.0 >> 32) as u32)?
            .value
            .as_mut()
    }

    /// Forget every open call (a crash); returns how many there were.
    pub fn clear(&mut self) -> usize {
        let mut open = 0;
        for s in self.slots.iter_mut().filter(|s| s.value.is_some()) {
            s.value = None;
            s.generation = s.generation.wrapping_add(1);
            open += 1;
        }
        self.free = (0..self.slots.len() as u32).rev().collect();
        open
    }
}

impl<T> CallTable<T> {
    /// Close every open call and return their entries in slot order (a crash after which
    /// the caller puts the work back instead of forgetting it).
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        for s in self.slots.iter_mut() {
            if let Some(v) = s.value.take() {
                s.generation = s.generation.wrapping_add(1);
                out.push(v);
            }
        }
        self.free = (0..self.slots.len() as u32).rev().collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_call_cannot_be_closed_again_even_when_its_slot_is_reused() {
        let mut t = CallTable::default();
        let a = t.open_plain("a");
        assert_eq!(t.close(a), Some("a"));
        let b = t.open_plain("b");
        assert_ne!(a, b, "same slot, new generation");
        assert_eq!(t.close(a), None, "a late answer to the old call");
        assert_eq!(t.clear(), 1);
        assert_eq!(t.close(b), None, "forgotten in the crash");
        assert_eq!(t.close(CallId(u64::MAX)), None, "never handed out");
    }
}

/// A request a node passed on (proxies, routers): who asked, under which call and request id,
/// and the timeout armed for the forwarded call.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded {
    /// The node that sent the request.
    pub from: NodeId,
    /// Its call id, to answer under.
    pub call: CallId,
    /// Its request id.
    pub id: RequestId,
    /// The timeout armed for the forwarded call.
    pub timer: TimerId,
}

/// A reachable node of `members`, at random (no draw when there is only one); `scratch` is
/// reused between calls so that picking allocates nothing.
pub fn pick_reachable(
    ctx: &Ctx<'_>,
    members: &[NodeId],
    scratch: &mut Vec<NodeId>,
    rng: &mut SimRng,
) -> Option<NodeId> {
    if let [only] = members[..] {
        return ctx.reachable(only).then_some(only);
    }
    scratch.clear();
    scratch.extend(members.iter().copied().filter(|&m| ctx.reachable(m)));
    match scratch.len() {
        0 => None,
        n => Some(scratch[rng.below(n as u64) as usize]),
    }
}

/// Answer call `call` of `to`; success carries an empty reply.
pub fn answer(
    ctx: &mut Ctx<'_>,
    to: NodeId,
    call: CallId,
    id: RequestId,
    result: Result<(), Cause>,
) {
    let result = result.map(|()| Default::default());
    ctx.send(to, Message::Response(Response { call, id, result }));
}
