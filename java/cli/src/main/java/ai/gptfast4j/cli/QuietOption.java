package ai.gptfast4j.cli;

import picocli.CommandLine.Option;

/** --quiet for the commands that draw progress bars (loading, quantizing, scoring). */
final class QuietOption {
    @Option(names = {"-q", "--quiet"}, description = "no progress bars (they are drawn only when stderr is a terminal)")
    boolean quiet;
}
