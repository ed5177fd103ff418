//! The drivers' one executor: runs their futures on the JavaScript microtask queue, in place of
//! `wasm-bindgen-futures`' `spawn_local` and `future_to_promise` (same signatures, same order).
//!
//! Why a copy of its own: that executor schedules its run of woken tasks with `queueMicrotask`,
//! which workerd makes about 15 times dearer than a reaction to a settled promise (measured in
//! workerd 1.20261117.1 on 2026-12-04: 2.3 to 3.9 s of CPU per million `queueMicrotask` calls
//! against 0.16 to 0.18 s per million `then` calls on a resolved promise), and the edge worker
//! wakes its driver about 27 times per short stream. Here a run is scheduled with one resolved
//! promise's `then`, which every engine makes a microtask too, in the same first-in-first-out
//! order. Everything else is as there: one queue of woken tasks, run in one microtask; a task
//! woken while it runs is queued again for the next one; a task's first poll is in the
//! microtask after it is spawned, never inside the call that spawns it.
//!
//! It must never decide: it only polls what the drivers hand it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

/// One spawned future.
struct Task {
    /// `None` once it finished.
    future: RefCell<Option<Pin<Box<dyn Future<Output = ()>>>>>,
    /// It is in the queue (a wake then adds nothing).
    queued: Cell<bool>,
}

/// The woken tasks, and how their run is scheduled.
struct Queue {
    tasks: RefCell<VecDeque<Rc<Task>>>,
    /// A run is scheduled.
    scheduled: Cell<bool>,
    /// A settled promise: a reaction to it is the next microtask.
    settled: Promise,
    /// The run, made once.
    run: Closure<dyn FnMut(JsValue)>,
}

thread_local! {
    static QUEUE: Queue = Queue {
        tasks: RefCell::new(VecDeque::new()),
        scheduled: Cell::new(false),
        settled: Promise::resolve(&JsValue::UNDEFINED),
        run: Closure::new(|_: JsValue| run_all()),
    };
}

/// Polls the tasks woken before this run began (those woken meanwhile wait for the next run).
fn run_all() {
    let count = QUEUE.with(|q| {
        q.scheduled.set(false);
        q.tasks.borrow().len()
    });
    for _ in 0..count {
        let Some(task) = QUEUE.with(|q| q.tasks.borrow_mut().pop_front()) else {
            break;
        };
        task.queued.set(false);
        poll(&task);
    }
}

/// Polls `task` once; drops its future when it is done.
fn poll(task: &Rc<Task>) {
    let waker = waker(task.clone());
    let mut cx = Context::from_waker(&waker);
    let mut slot = task.future.borrow_mut();
    if let Some(future) = slot.as_mut() {
        if future.as_mut().poll(&mut cx).is_ready() {
            *slot = None;
        }
    }
}

/// Queues `task` for the next run (once until it runs).
fn wake(task: &Rc<Task>) {
    if task.queued.replace(true) {
        return;
    }
    QUEUE.with(|q| {
        q.tasks.borrow_mut().push_back(task.clone());
        if !q.scheduled.replace(true) {
            let _ = q.settled.then(&q.run);
        }
    });
}

const VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_by_ref_raw, drop_raw);

fn waker(task: Rc<Task>) -> Waker {
    let raw = RawWaker::new(Rc::into_raw(task).cast(), &VTABLE);
    // SAFETY: the vtable's functions treat the data pointer as the `Rc<Task>` it was made from
    // (one strong count per waker), and every waker lives on this one thread (wasm32 without
    // threads: nothing here is `Send`, and no waker leaves the thread that made it).
    unsafe { Waker::from_raw(raw) }
}

unsafe fn clone_raw(data: *const ()) -> RawWaker {
    // SAFETY: `data` came from `Rc::into_raw` and its waker still holds that count.
    unsafe { Rc::increment_strong_count(data.cast::<Task>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake_raw(data: *const ()) {
    // SAFETY: the waker's own count, given up here.
    let task = unsafe { Rc::from_raw(data.cast::<Task>()) };
    wake(&task);
}

unsafe fn wake_by_ref_raw(data: *const ()) {
    // SAFETY: borrowed for the call; the waker keeps its count.
    let task = std::mem::ManuallyDrop::new(unsafe { Rc::from_raw(data.cast::<Task>()) });
    wake(&task);
}

unsafe fn drop_raw(data: *const ()) {
    // SAFETY: the waker's own count, given up here.
    drop(unsafe { Rc::from_raw(data.cast::<Task>()) });
}

/// Runs `future` to its end, its first poll in the next microtask.
pub(crate) fn spawn_local(future: impl Future<Output = ()> + 'static) {
    let task = Rc::new(Task {
        future: RefCell::new(Some(Box::pin(future))),
        queued: Cell::new(false),
    });
    wake(&task);
}

/// A promise that settles as `future` ends: resolved with its value or rejected with its error.
pub(crate) fn future_to_promise(
    future: impl Future<Output = Result<JsValue, JsValue>> + 'static,
) -> Promise {
    let mut future = Some(future);
    Promise::new(&mut |resolve: Function, reject: Function| {
        let Some(future) = future.take() else { return };
        spawn_local(async move {
            // Calling a promise's own resolving functions cannot throw.
            let _ = match future.await {
                Ok(value) => resolve.call1(&JsValue::UNDEFINED, &value),
                Err(error) => reject.call1(&JsValue::UNDEFINED, &error),
            };
        });
    })
}
