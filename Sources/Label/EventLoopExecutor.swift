import NIOCore
import NIOPosix

/// A Swift task executor that runs jobs on one NIO event loop.
///
/// The label run's conversations are tasks that mostly wait on AsyncHTTPClient, whose I/O runs
/// on an event loop. On the default executor every answer crosses threads twice (the loop
/// completes the response, a cooperative-pool thread is woken to resume the task, which hands
/// the next request back to the loop and wakes it): at 1-2 requests in flight those wake-ups
/// were most of the client's CPU per request. With the tasks preferring this executor
/// (`withTaskExecutorPreference`) a task resumes on the thread its bytes arrived on.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
  let eventLoop: any EventLoop

  init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }
}
