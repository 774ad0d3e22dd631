//! The group coordinator of a partitioned log: membership, partition assignment, rebalancing
//! (stop-the-world or incremental) and committed offsets of one consumer group. A `Topic`
//! broker runs one for every group it coordinates.
//!
//! ```text
//!  Join / a member silent for session_timeout / a member restarted ──▶ rebalance:
//!   Eager:       Revoke(all it owns) ─▶ every member; each finishes the batch in hand, answers
//!                Revoked(positions); once none is revoking: range assignment, Assign ─▶ all
//!   Cooperative: target = sticky balanced assignment; Revoke only partitions that move ─▶
//!                their owners; unowned partitions go to their target at once (Assign);
//!                Revoked ─▶ the freed partitions go to their targets
//!  Heartbeat ─▶ HeartbeatAck (and the pending Revoke or Assign again if the member missed it)
//!  Commit from the partition's owner ─▶ committed position (from anyone else: fenced, ignored)
//! ```
//! Committed offsets are durable (Kafka keeps them in a log); membership is not: after a
//! coordinator crash, members are added back as their heartbeats arrive.

use crate::check::stream::StreamChecker;
use crate::components::data::stream_msg::{GroupSpec, Rebalance, StreamMsg};
use crate::components::message::{Ctx, Message};
use crate::sim::NodeId;
use crate::sim::time::SimTime;

/// One member of a group as the coordinator sees it.
#[derive(Clone, Debug)]
struct Member {
    node: NodeId,
    incarnation: u32,
    last_heard: SimTime,
    /// The newest generation the member has said it saw.
    seen: u32,
    /// Partitions it consumes.
    owned: Vec<u32>,
    /// Partitions it is giving up (asked, not yet answered).
    revoking: Vec<u32>,
}

/// One consumer group at its coordinator.
pub struct GroupState {
    /// The group's id (hash of its name).
    pub id: u64,
    spec: GroupSpec,
    check: u32,
    members: Vec<Member>,
    owner: Vec<Option<NodeId>>,
    committed: Vec<u64>,
    generation: u32,
    /// A session-check timer is set.
    pub ticking: bool,
    /// The group is waiting `initial_rebalance_delay` for its first members before the first
    /// assignment (so members starting together do not trigger one rebalance each).
    pub forming: bool,
}

impl GroupState {
    /// A group over `partitions` partitions, known to the checker as `check`.
    pub fn new(id: u64, spec: GroupSpec, partitions: u32, check: u32) -> GroupState {
        GroupState {
            id,
            spec,
            check,
            members: Vec::new(),
            owner: vec![None; partitions as usize],
            committed: vec![0; partitions as usize],
            generation: 0,
            ticking: false,
            forming: true,
        }
    }

    /// The group's spec.
    pub fn spec(&self) -> &GroupSpec {
        &self.spec
    }

    fn member(&self, node: NodeId, incarnation: u32) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.node == node && m.incarnation == incarnation)
    }

    /// A consumer joined (or rejoined after a restart).
    pub fn join(&mut self, ctx: &mut Ctx<'_>, c: &mut StreamChecker, from: NodeId, inc: u32) {
        if let Some(i) = self.member(from, inc) {
            // A repeated join: it missed our answer.
            self.members[i].last_heard = ctx.now();
            self.instruct(ctx, i);
            return;
        }
        if let Some(i) = self.members.iter().position(|m| m.node == from) {
            self.drop_member(i); // restarted: its old self is gone
        }
        let at = self.members.partition_point(|m| m.node < from);
        self.members.insert(
            at,
            Member {
                node: from,
                incarnation: inc,
                last_heard: ctx.now(),
                seen: 0,
                owned: Vec::new(),
                revoking: Vec::new(),
            },
        );
        if !self.forming {
            self.rebalance(ctx, c);
        }
    }

    /// The initial delay is over: the first assignment.
    pub fn formed(&mut self, ctx: &mut Ctx<'_>, c: &mut StreamChecker) {
        self.forming = false;
        self.rebalance(ctx, c);
    }

    /// A member's heartbeat; an unknown member is taken as joining.
    pub fn heartbeat(
        &mut self,
        ctx: &mut Ctx<'_>,
        c: &mut StreamChecker,
        from: NodeId,
        inc: u32,
        seen: u32,
    ) {
        let Some(i) = self.member(from, inc) else {
            self.join(ctx, c, from, inc);
            return;
        };
        let m = &mut self.members[i];
        m.last_heard = ctx.now();
        m.seen = m.seen.max(seen);
        let id = self.id;
        ctx.send(from, Message::Stream(StreamMsg::HeartbeatAck { group: id }));
        let m = &self.members[i];
        if !m.revoking.is_empty() || m.seen < self.generation {
            self.instruct(ctx, i);
        }
    }

    /// A member gave up partitions; `positions` are where each resumes.
    pub fn revoked(
        &mut self,
        ctx: &mut Ctx<'_>,
        c: &mut StreamChecker,
        from: NodeId,
        inc: u32,
        positions: &[(u32, u64)],
    ) {
        let Some(i) = self.member(from, inc) else {
            return;
        };
        let now = ctx.now();
        for &(p, pos) in positions {
            let m = &mut self.members[i];
            if let Some(k) = m.revoking.iter().position(|&q| q == p) {
                m.revoking.swap_remove(k);
                // u64::MAX: the member no longer knows (it answered before and that was lost).
                if pos != u64::MAX {
                    self.set_committed(c, p, pos, now);
                }
            }
        }
        if self.members.iter().all(|m| m.revoking.is_empty()) {
            self.settle(ctx, c);
        }
    }

    /// A member committed `offset` of partition `p`: kept if it owns the partition.
    pub fn commit(
        &mut self,
        ctx: &Ctx<'_>,
        c: &mut StreamChecker,
        from: NodeId,
        inc: u32,
        p: u32,
        offset: u64,
    ) {
        let Some(i) = self.member(from, inc) else {
            return; // fenced: not a member (any more)
        };
        let m = &self.members[i];
        let owns = self.owner.get(p as usize) == Some(&Some(from)) || m.revoking.contains(&p);
        if owns {
            self.set_committed(c, p, offset, ctx.now());
        }
    }

    /// A member's consumers only move forward, so a commit below the committed position is
    /// an older one the network delivered late (Kafka's one connection keeps them in order).
    fn set_committed(&mut self, c: &mut StreamChecker, p: u32, offset: u64, now: SimTime) {
        let slot = &mut self.committed[p as usize];
        if offset > *slot {
            *slot = offset;
            c.commit(self.check, p, offset, now);
        }
    }

    /// Check sessions: members silent for `session_timeout` are dropped.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>, c: &mut StreamChecker) {
        let now = ctx.now();
        let timeout = self.spec.session_timeout;
        let before = self.members.len();
        let mut i = 0;
        while i < self.members.len() {
            if now.since(self.members[i].last_heard) > timeout {
                self.drop_member(i);
            } else {
                i += 1;
            }
        }
        if self.members.len() != before && !self.forming {
            self.rebalance(ctx, c);
        }
    }

    /// The coordinator crashed: membership is forgotten, committed offsets are kept.
    pub fn crash(&mut self, now: SimTime, c: &mut StreamChecker) {
        self.members.clear();
        self.owner.iter_mut().for_each(|o| *o = None);
        self.ticking = false;
        c.paused(self.check, self.owner.len() as u32, now);
    }

    fn drop_member(&mut self, i: usize) {
        let m = self.members.remove(i);
        for p in m.owned.into_iter().chain(m.revoking) {
            if self.owner[p as usize] == Some(m.node) {
                self.owner[p as usize] = None;
            }
        }
    }

    fn rebalance(&mut self, ctx: &mut Ctx<'_>, c: &mut StreamChecker) {
        self.generation += 1;
        match self.spec.rebalance {
            Rebalance::Eager => {
                for i in 0..self.members.len() {
                    let owned = std::mem::take(&mut self.members[i].owned);
                    for &p in &owned {
                        self.owner[p as usize] = None;
                    }
                    self.members[i].revoking.extend(owned);
                    if !self.members[i].revoking.is_empty() {
                        self.instruct(ctx, i);
                    }
                }
            }
            Rebalance::Cooperative => {}
        }
        if self.members.iter().all(|m| m.revoking.is_empty()) {
            self.settle(ctx, c);
        } else {
            self.report(ctx.now(), c);
        }
    }

    /// No revocation pending: hand out partitions (eager: all, by range; cooperative: move
    /// what must move toward a sticky balance, revoking first).
    fn settle(&mut self, ctx: &mut Ctx<'_>, c: &mut StreamChecker) {
        if self.members.is_empty() {
            self.report(ctx.now(), c);
            return;
        }
        let target = match self.spec.rebalance {
            Rebalance::Eager => range(self.members.len(), self.owner.len()),
            Rebalance::Cooperative => self.sticky(),
        };
        let mut changed = vec![false; self.members.len()];
        for (p, &t) in target.iter().enumerate() {
            let cur = self.owner[p].and_then(|n| self.members.iter().position(|m| m.node == n));
            match cur {
                Some(a) if a != t => {
                    let m = &mut self.members[a];
                    m.owned.retain(|&q| q != p as u32);
                    m.revoking.push(p as u32);
                    self.owner[p] = None;
                    changed[a] = true;
                }
                Some(_) => {}
                None => {
                    self.owner[p] = Some(self.members[t].node);
                    self.members[t].owned.push(p as u32);
                    changed[t] = true;
                }
            }
        }
        if changed.iter().any(|&x| x) {
            self.generation += 1;
        }
        for (i, _) in changed.iter().enumerate().filter(|(_, x)| **x) {
            self.instruct(ctx, i);
        }
        self.report(ctx.now(), c);
    }

    /// Cooperative target: every member keeps what it owns up to its share; the rest go to the
    /// members below their share, fewest first. Shares differ by at most one, and the larger
    /// ones go to the members already holding more (fewer moves).
    fn sticky(&self) -> Vec<usize> {
        let (n, parts) = (self.members.len(), self.owner.len());
        let mut by_held: Vec<usize> = (0..n).collect();
        by_held.sort_by_key(|&i| (std::cmp::Reverse(self.members[i].owned.len()), i));
        let mut cap = vec![parts / n; n];
        for &i in by_held.iter().take(parts % n) {
            cap[i] += 1;
        }
        let mut count = vec![0; n];
        let mut target = vec![usize::MAX; parts];
        for (i, m) in self.members.iter().enumerate() {
            for &p in &m.owned {
                if count[i] < cap[i] {
                    target[p as usize] = i;
                    count[i] += 1;
                }
            }
        }
        for t in target.iter_mut().filter(|t| **t == usize::MAX) {
            let i = (0..n)
                .filter(|&i| count[i] < cap[i])
                .min_by_key(|&i| (count[i], i))
                .expect("shares add up to the partitions");
            *t = i;
            count[i] += 1;
        }
        target
    }

    /// Send member `i` what it should be doing: give up partitions, or consume these.
    fn instruct(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let (id, generation) = (self.id, self.generation);
        let m = &self.members[i];
        let msg = if m.revoking.is_empty() {
            let mut partitions: Vec<(u32, u64)> = m
                .owned
                .iter()
                .map(|&p| (p, self.committed[p as usize]))
                .collect();
            partitions.sort_unstable();
            StreamMsg::Assign {
                group: id,
                generation,
                partitions,
            }
        } else {
            StreamMsg::Revoke {
                group: id,
                generation,
                partitions: m.revoking.clone(),
            }
        };
        ctx.send(m.node, Message::Stream(msg));
    }

    fn report(&self, now: SimTime, c: &mut StreamChecker) {
        let paused = self.owner.iter().filter(|o| o.is_none()).count();
        c.paused(self.check, paused as u32, now);
    }
}

/// Kafka's range assignment: member `i` of `n` gets a contiguous run of partitions, the first
/// `parts mod n` members one more.
fn range(n: usize, parts: usize) -> Vec<usize> {
    let (q, r) = (parts / n, parts % n);
    let mut target = Vec::with_capacity(parts);
    for i in 0..n {
        let take = q + usize::from(i < r);
        target.extend(std::iter::repeat_n(i, take));
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::time::SimDuration;

    fn group(members: &[&[u32]]) -> GroupState {
        let spec = GroupSpec {
            name: "g".into(),
            rebalance: Rebalance::Cooperative,
            session_timeout: SimDuration::from_secs(1),
            heartbeat_interval: SimDuration::from_millis(100),
            initial_rebalance_delay: SimDuration::ZERO,
            idempotent: false,
        };
        let mut g = GroupState::new(1, spec, 7, 0);
        for (i, owned) in members.iter().enumerate() {
            g.members.push(Member {
                node: NodeId(i as u32),
                incarnation: 0,
                last_heard: SimTime(0),
                seen: 0,
                owned: owned.to_vec(),
                revoking: Vec::new(),
            });
        }
        g
    }

    #[test]
    fn range_gives_the_first_members_one_more() {
        assert_eq!(range(3, 7), [0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(range(4, 2), [0, 1]);
    }

    #[test]
    fn sticky_moves_only_what_balance_needs() {
        // Member 0 owned everything; a second and third member joined.
        let g = group(&[&[0, 1, 2, 3, 4, 5, 6], &[], &[]]);
        let t = g.sticky();
        let kept = (0..7).filter(|&p| t[p] == 0).count();
        assert_eq!(kept, 3, "{t:?}");
        for i in 1..3 {
            assert_eq!(t.iter().filter(|&&m| m == i).count(), 2, "{t:?}");
        }
        // Already balanced: nothing moves.
        let g = group(&[&[0, 3, 6], &[1, 4], &[2, 5]]);
        assert_eq!(g.sticky(), [0, 1, 2, 0, 1, 2, 0]);
    }
}
