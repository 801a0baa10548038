package ai.gptfast4j.serve;

import java.util.concurrent.TimeUnit;

/**
 * Holds a server's engine steps so tests decide when generation may advance (instead of racing it
 * with sleeps): installed as the scheduler's before-step hook. Open, steps run freely; held, each
 * step waits for a permit from {@link #allow}. A worker interrupted at the gate (the server
 * stopping) goes on.
 */
final class StepGate implements Runnable {
    private boolean held;
    private int permits;
    private int waiting;

    synchronized void hold() {
        held = true;
        permits = 0;
    }

    synchronized void open() {
        held = false;
        notifyAll();
    }

    /** Lets n more steps run while held. */
    synchronized void allow(int n) {
        permits += n;
        notifyAll();
    }

    @Override
    public synchronized void run() {
        waiting++;
        notifyAll();
        try {
            while (held && permits == 0) wait();
            if (held) permits--;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            waiting--;
            notifyAll();
        }
    }

    /** Waits (at most 30 s) until a worker stands at the gate with no permit left to take. */
    synchronized void awaitBlocked() throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!(waiting > 0 && permits == 0)) {
            long left = until - System.nanoTime();
            if (left <= 0) throw new AssertionError("no worker reached the step gate");
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
    }
}
