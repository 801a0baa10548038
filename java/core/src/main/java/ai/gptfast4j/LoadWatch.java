package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;

/**
 * Reports a load's progress to a listener: the native loaders count bytes into a LoadProgress
 * this (loading) thread watches; a daemon thread reads the counts and tells the listener. No
 * callbacks cross JNI from native threads.
 */
final class LoadWatch implements AutoCloseable {
    private static final long PERIOD_MS = 100;
    private final GptFastNative.LoadProgress progress;
    private final Engine.LoadListener listener;
    private final Thread poller;

    private LoadWatch(Engine.LoadListener listener) {
        this.listener = listener;
        progress = listener == null ? null : new GptFastNative.LoadProgress();
        if (progress == null) {
            poller = null;
            return;
        }
        progress.watch();
        poller = new Thread(() -> {
            try {
                while (!Thread.currentThread().isInterrupted()) {
                    report();
                    Thread.sleep(PERIOD_MS);
                }
            } catch (InterruptedException e) {
                // closed
            }
        }, "gptfast4j-load-progress");
        poller.setDaemon(true);
        poller.start();
    }

    static LoadWatch start(Engine.LoadListener listener) {
        return new LoadWatch(listener);
    }

    private void report() {
        long total = progress.total();
        if (total > 0) listener.onProgress(Math.min(progress.done(), total), total);
    }

    @Override
    public void close() {
        if (progress == null) return;
        poller.interrupt();
        try {
            poller.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        progress.unwatch();
        report();
        progress.close();
    }
}
