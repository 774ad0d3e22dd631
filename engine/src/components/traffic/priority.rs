//! A server's waiting room by request class: priority queues (non-preemptive and
//! preemptive-resume), per-class worker quotas, and push-out of the lowest class when full.
//!
//! ```text
//!  arrival of class c ─▶ a free worker and c under its quota? ─yes─▶ start
//!        │ no                       (PreemptiveResume: else preempt the lowest class in service
//!        ▼                           below c; it waits at the head of its class with the work
//!  queue full? ─no─▶ wait in c's queue          it has left, and resumes where it stopped)
//!        │ yes
//!        ▼
//!  a lower class waits? ─yes─▶ push out its newest request (answered `shed`), c waits
//!        │ no
//!        ▼
//!  rejected
//!  a worker frees ─▶ the next request: the highest class with work under its quota
//!                    (`Fifo` with quotas: the oldest such request)
//! ```
//! The plain FIFO server (no classes, no quotas) keeps its single queue and never builds this.

use crate::sim::time::{SimDuration, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How a server picks the next waiting request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Scheduling {
    /// First come, first served, whatever the class.
    #[default]
    Fifo,
    /// The highest class first (the order of the scenario's `classes`), first come first served
    /// within a class; a request in service runs to its end (non-preemptive priority, Cobham).
    /// When the queue is full, a request pushes out the newest waiting request of a lower
    /// class, which is answered `shed`.
    Priority,
    /// As `Priority`, and a request that finds every worker busy preempts the lowest-class
    /// request in local service below its own class; the preempted request resumes later
    /// where it stopped (preemptive-resume priority).
    PreemptiveResume,
}

impl Scheduling {
    /// Whether this is the default (left out when a scenario is echoed).
    pub fn is_fifo(&self) -> bool {
        *self == Scheduling::Fifo
    }
}

/// A waiting request: the job, the work it has left if it was preempted, and its arrival order.
struct Waiting<J> {
    job: J,
    remaining: Option<SimDuration>,
    seq: u64,
}

/// What a worker is doing, for quotas and preemption.
#[derive(Clone, Copy, Debug)]
struct Worker<T> {
    class: u8,
    /// While the request is in local service (not waiting for downstream calls): its timer
    /// and when that work ends.
    cpu: Option<(T, SimTime)>,
}

/// Per-class queues of jobs `J`, for workers whose service timers are `T`.
pub struct ClassQueues<J, T> {
    policy: Scheduling,
    queues: Vec<VecDeque<Waiting<J>>>,
    len: usize,
    next_seq: u64,
    /// Most workers each class may hold at once (`u32::MAX`: no quota).
    quota: Vec<u32>,
    busy: Vec<u32>,
    workers: Vec<Option<Worker<T>>>,
}

/// A request to take off a worker: which worker, its timer, and the work it has left.
pub struct Preempted<T> {
    /// The worker to free.
    pub worker: u32,
    /// Its service timer, to cancel.
    pub timer: T,
    /// The service time it still needs.
    pub remaining: SimDuration,
}

impl<J, T: Copy> ClassQueues<J, T> {
    /// Queues for `classes` classes (at least one), `workers` workers and per-class quotas
    /// (`u32::MAX`: none).
    pub fn new(policy: Scheduling, classes: usize, workers: u32, quota: Vec<u32>) -> Self {
        let n = classes.max(1);
        let mut quota = quota;
        quota.resize(n, u32::MAX);
        ClassQueues {
            policy,
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            len: 0,
            next_seq: 0,
            quota,
            busy: vec![0; n],
            workers: vec![None; workers as usize],
        }
    }

    fn class_of(&self, class: u8) -> usize {
        (class as usize).min(self.queues.len() - 1)
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes the queues hold room for (their capacities), for the memory budget.
    pub fn bytes(&self) -> usize {
        let each = std::mem::size_of::<Waiting<J>>();
        self.queues.iter().map(|q| q.capacity() * each).sum()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a request of `class` may take a worker now (its class is under its quota).
    pub fn may_start(&self, class: u8) -> bool {
        let c = self.class_of(class);
        self.busy[c] < self.quota[c]
    }

    /// Queue a new request of `class` at the back of its class.
    pub fn push(&mut self, class: u8, job: J) {
        let c = self.class_of(class);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queues[c].push_back(Waiting {
            job,
            remaining: None,
            seq,
        });
        self.len += 1;
    }

    /// With priority scheduling, take out the newest waiting request of the lowest class
    /// below `class`, to make room for one of `class`.
    pub fn push_out_for(&mut self, class: u8) -> Option<J> {
        if self.policy == Scheduling::Fifo {
            return None;
        }
        let c = self.class_of(class);
        let lowest = (c + 1..self.queues.len())
            .rev()
            .find(|&l| self.queues[l].iter().any(|w| w.remaining.is_none()))?;
        // A preempted request (at the head) has been served in part: push out a new one.
        let q = &mut self.queues[lowest];
        let i = q.iter().rposition(|w| w.remaining.is_none())?;
        self.len -= 1;
        q.remove(i).map(|w| w.job)
    }

    /// The next request to start, with the work it has left if it was preempted.
    pub fn pop(&mut self) -> Option<(J, Option<SimDuration>)> {
        let eligible = |c: usize| !self.queues[c].is_empty() && self.busy[c] < self.quota[c];
        let c = match self.policy {
            Scheduling::Fifo => (0..self.queues.len())
                .filter(|&c| eligible(c))
                .min_by_key(|&c| self.queues[c].front().map_or(u64::MAX, |w| w.seq))?,
            Scheduling::Priority | Scheduling::PreemptiveResume => {
                (0..self.queues.len()).find(|&c| eligible(c))?
            }
        };
        let w = self.queues[c].pop_front()?;
        self.len -= 1;
        Some((w.job, w.remaining))
    }

    /// A request of `class` started on `worker`; its local work ends at `until` (timer
    /// `timer`).
    pub fn started(&mut self, worker: u32, class: u8, timer: T, until: SimTime) {
        let c = self.class_of(class);
        self.busy[c] += 1;
        self.workers[worker as usize] = Some(Worker {
            class: c as u8,
            cpu: Some((timer, until)),
        });
    }

    /// `worker`'s local work is done (it may still wait for downstream calls).
    pub fn local_work_done(&mut self, worker: u32) {
        if let Some(w) = self.workers[worker as usize].as_mut() {
            w.cpu = None;
        }
    }

    /// `worker` is free again.
    pub fn freed(&mut self, worker: u32) {
        if let Some(w) = self.workers[worker as usize].take() {
            self.busy[w.class as usize] -= 1;
        }
    }

    /// With preemptive-resume scheduling, the worker to take from a lower class for a request
    /// of `class` (the lowest class in local service, the one that started last on a tie).
    pub fn preempt_for(&mut self, class: u8, now: SimTime) -> Option<Preempted<T>> {
        if self.policy != Scheduling::PreemptiveResume || !self.may_start(class) {
            return None;
        }
        let c = self.class_of(class);
        let (worker, w) = self
            .workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| Some((i, (*w)?)))
            .filter(|(_, w)| w.cpu.is_some() && w.class as usize > c)
            .max_by_key(|(_, w)| (w.class, w.cpu.map(|(_, until)| until)))?;
        let (timer, until) = w.cpu?;
        Some(Preempted {
            worker: worker as u32,
            timer,
            remaining: until.since(now),
        })
    }

    /// Put a preempted request back at the head of its class, with the work it has left.
    pub fn requeue_front(&mut self, class: u8, job: J, remaining: SimDuration) {
        let c = self.class_of(class);
        self.queues[c].push_front(Waiting {
            job,
            remaining: Some(remaining),
            seq: 0,
        });
        self.len += 1;
    }

    /// A crash: nothing waits and no worker is busy.
    pub fn clear(&mut self) {
        self.queues.iter_mut().for_each(VecDeque::clear);
        self.len = 0;
        self.busy.iter_mut().for_each(|b| *b = 0);
        self.workers.iter_mut().for_each(|w| *w = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timer handle: any number, these tests never fire one.
    fn timer() -> u32 {
        7
    }

    #[test]
    fn priority_serves_the_highest_class_first_and_fifo_within() {
        let mut q: ClassQueues<&str, u32> =
            ClassQueues::new(Scheduling::Priority, 3, 1, Vec::new());
        for (class, job) in [(2, "c1"), (1, "b1"), (2, "c2"), (0, "a1"), (1, "b2")] {
            q.push(class, job);
        }
        let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(j, _)| j)).collect();
        assert_eq!(order, vec!["a1", "b1", "b2", "c1", "c2"]);
    }

    #[test]
    fn fifo_with_quotas_keeps_arrival_order_among_classes_under_quota() {
        let mut q: ClassQueues<&str, u32> = ClassQueues::new(Scheduling::Fifo, 2, 2, vec![1]);
        q.push(0, "a1");
        q.push(1, "b1");
        q.push(0, "a2");
        q.started(0, 0, timer(), SimTime(10));
        // Class 0 holds its one worker: b1 goes next, then a2 once a1's worker is freed.
        assert_eq!(q.pop().map(|(j, _)| j), Some("b1"));
        assert!(q.pop().is_none());
        q.freed(0);
        assert_eq!(q.pop().map(|(j, _)| j), Some("a1"));
    }

    #[test]
    fn push_out_takes_the_newest_of_the_lowest_class_below() {
        let mut q: ClassQueues<&str, u32> =
            ClassQueues::new(Scheduling::Priority, 3, 1, Vec::new());
        for (class, job) in [(1, "b1"), (2, "c1"), (2, "c2")] {
            q.push(class, job);
        }
        assert_eq!(q.push_out_for(0), Some("c2"));
        assert_eq!(q.push_out_for(1), Some("c1"));
        assert_eq!(q.push_out_for(1), None, "nothing below class 1 waits");
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn preemption_picks_the_lowest_class_in_local_service() {
        let mut q: ClassQueues<&str, u32> =
            ClassQueues::new(Scheduling::PreemptiveResume, 3, 3, Vec::new());
        q.started(0, 1, timer(), SimTime(50));
        q.started(1, 2, timer(), SimTime(90));
        q.started(2, 2, timer(), SimTime(70));
        q.local_work_done(1);
        let p = q
            .preempt_for(0, SimTime(40))
            .expect("a lower class in service");
        assert_eq!((p.worker, p.remaining), (2, SimDuration(30)));
        assert!(
            q.preempt_for(2, SimTime(40)).is_none(),
            "nothing below the lowest class"
        );
    }
}
