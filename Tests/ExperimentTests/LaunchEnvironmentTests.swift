import Data
import Experiment
import XCTest

/// The launchers' environments, read as torch.distributed's env:// reads them.
final class LaunchEnvironmentTests: XCTestCase {
  func testNoLauncherIsOneProcess() throws {
    XCTAssertNil(try LaunchEnvironment.detect([:]))
    XCTAssertNil(try LaunchEnvironment.detect(["SLURM_NTASKS": "1", "SLURM_PROCID": "0"]), "a one-task Slurm step")
  }

  func testTorchrun() throws {
    let e = try XCTUnwrap(try LaunchEnvironment.detect([
      "RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "node7", "MASTER_PORT": "29511",
      "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RUN_ID": "x"]))
    XCTAssertEqual(e, LaunchEnvironment(rank: 3, worldSize: 8, localRank: 1, localWorldSize: 2, masterAddress: "node7", masterPort: 29511,
                                        agentHostsStore: true, launcher: "torchrun"))
  }

  func testSlurmTakesTheFirstNodeOfTheJob() throws {
    let e = try XCTUnwrap(try LaunchEnvironment.detect([
      "SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "4(x2)",
      "SLURM_JOB_NODELIST": "gpu[07-08,11],cpu1"]))
    XCTAssertEqual(e, LaunchEnvironment(rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, masterAddress: "gpu07", masterPort: 29500,
                                        agentHostsStore: false, launcher: "slurm"))
    XCTAssertEqual(SlurmNodeList.firstHost("node1,node2"), "node1")
    XCTAssertEqual(SlurmNodeList.firstHost("a[003,005-9]-ib"), "a003-ib")
    XCTAssertEqual(SlurmNodeList.firstHost(" "), nil)
  }

  func testIncompleteEnvironmentsAreNamed() {
    XCTAssertThrowsError(try LaunchEnvironment.detect(["WORLD_SIZE": "2", "MASTER_ADDR": "h"])) {
      XCTAssertEqual("\($0)", "environment: WORLD_SIZE=2 is set but RANK is not: a data-parallel launch sets both (torchrun does); set RANK or unset WORLD_SIZE")
    }
    XCTAssertThrowsError(try LaunchEnvironment.detect(["WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h"])) {
      XCTAssertEqual("\($0)", "environment: RANK=2 is not below WORLD_SIZE=2")
    }
    XCTAssertThrowsError(try LaunchEnvironment.detect(["WORLD_SIZE": "2", "RANK": "1"])) {
      XCTAssertEqual("\($0)", "environment: WORLD_SIZE=2 is set but MASTER_ADDR is not: set it to rank 0's host (torchrun does)")
    }
    XCTAssertThrowsError(try LaunchEnvironment.detect(["WORLD_SIZE": "two"])) {
      XCTAssertEqual("\($0)", "environment: WORLD_SIZE=two is not a non-negative integer (set by the launcher; check the job script)")
    }
  }

  /// DistributedSampler at batch granularity: every batch once over the ranks, rank r the
  /// batches r, r+W, ...; training drops the last n mod W.
  func testShards() {
    let train = (0..<3).map { Shard(rank: $0, count: 3, dropRemainder: true) }
    XCTAssertEqual(train.map { $0.indices(from: 0, of: 10) }, [[0, 3, 6], [1, 4, 7], [2, 5, 8]])
    XCTAssertEqual(train.map { $0.indices(from: 4, of: 10) }, [[6], [4, 7], [5, 8]], "a resumed epoch")
    let tune = (0..<3).map { Shard(rank: $0, count: 3, dropRemainder: false) }
    XCTAssertEqual(tune.flatMap { $0.indices(from: 0, of: 10) }.sorted(), Array(0..<10))
    XCTAssertEqual(Shard.whole.indices(from: 2, of: 5), [2, 3, 4])
  }
}
