//! PHOLD on the `simcore` crate (0.1, the crates.io successor of DSLab's simulation core): the
//! same model, streams and draws as the kernel's, for the side-by-side comparison.
//!
//! A process is a simcore component (an `EventHandler` behind `Rc<RefCell<…>>`, as simcore
//! wants it) that emits `()` to the receiver after the drawn delay. simcore's clock is an
//! `f64`; times here are whole nanoseconds, which an `f64` holds exactly below 2^53, and simcore
//! orders events by (time, id) with ids given in emission order, so the run processes the same
//! events in the same order as the kernel and the hand-written loop.

use crate::{phold_draw, phold_initial, phold_rng};
use archsim::sim::rng::SimRng;
use archsim::sim::time::SimTime;
use simcore::{Event, EventHandler, Simulation, SimulationContext};
use std::cell::RefCell;
use std::rc::Rc;

/// One PHOLD process.
struct Lp {
    ctx: SimulationContext,
    rng: SimRng,
    n: u64,
    received: u64,
}

impl Lp {
    fn fire(&mut self) {
        let (to, delay) = phold_draw(&mut self.rng, self.n);
        // Process `to` has simcore id `to`: they are registered in order in a new simulation.
        self.ctx.emit((), to, delay.0 as f64);
    }
}

impl EventHandler for Lp {
    fn on(&mut self, _event: Event) {
        self.received += 1;
        self.fire();
    }
}

/// Run PHOLD on simcore until `end`: `lps` processes, `pending` events in flight. Returns the
/// number of events processed and, per process, how many it received.
pub fn simcore_phold(lps: usize, pending: usize, seed: u64, end: SimTime) -> (u64, Vec<u64>) {
    let mut sim = Simulation::new(seed);
    let processes: Vec<Rc<RefCell<Lp>>> = (0..lps)
        .map(|i| {
            let name = format!("lp-{i}");
            let ctx = sim.create_context(&name);
            assert_eq!(ctx.id() as usize, i, "simcore numbers components in order");
            let lp = Rc::new(RefCell::new(Lp {
                ctx,
                rng: phold_rng(seed, i),
                n: lps as u64,
                received: 0,
            }));
            sim.add_handler(&name, lp.clone());
            lp
        })
        .collect();
    for (i, lp) in processes.iter().enumerate() {
        for _ in 0..phold_initial(lps, pending, i) {
            lp.borrow_mut().fire();
        }
    }
    sim.step_until_time(end.0 as f64);
    let received: Vec<u64> = processes.iter().map(|lp| lp.borrow().received).collect();
    (received.iter().sum(), received)
}
