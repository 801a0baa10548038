package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import java.time.Duration;

/**
 * Tensor parallelism over several processes or machines, in torchrun's vocabulary: {@code tp}
 * ranks in all over {@code nnodes} processes ({@code tp / nnodes} each), meeting through a c10d
 * TCPStore that node 0 serves at {@code masterAddr:masterPort}.
 *
 * <p>Node 0 calls {@link #listen} once and then loads engines with {@link EngineOptions#withTp}
 * of the same {@code tp} as usual: it owns the API, and every model it loads and every forward
 * pass it runs is replayed by the other nodes, which call {@link #follow} and return from it when
 * node 0 calls {@link #shutdown}. The first engine load waits up to the timeout for the other
 * nodes to join and fails naming the missing ones.
 */
public final class TensorParallelNodes {
    private TensorParallelNodes() {}

    /** Node 0: listens (port 0: a free one) and returns the port. One group per process. */
    public static int listen(String masterAddr, int masterPort, int nnodes, int tp, Duration timeout) {
        try {
            return GptFastNative.tpListen(masterAddr, masterPort, nnodes, tp, millis(timeout));
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    /**
     * Nodes 1..nnodes-1: joins node 0 (retrying up to the timeout) and replays its requests; returns
     * when node 0 shuts the group down, throws when it goes away.
     */
    public static void follow(String masterAddr, int masterPort, int nnodes, int nodeRank, int tp, Duration timeout) {
        try {
            GptFastNative.tpFollow(masterAddr, masterPort, nnodes, nodeRank, tp, millis(timeout));
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    /** Node 0: tells the followers to exit (waiting, bounded, until they have) and leaves the group. */
    public static void shutdown() {
        try {
            GptFastNative.tpShutdown();
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    private static int millis(Duration timeout) {
        return (int) Math.min(Integer.MAX_VALUE, Math.max(1, timeout.toMillis()));
    }
}
