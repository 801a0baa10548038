package ai.gptfast4j.cli;

import ai.gptfast4j.GptFastException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code gptfast} command line. Exit codes: 0 success, 1 a runtime error (bad checkpoint, ...),
 * 2 bad arguments; errors are one line on stderr.
 */
@Command(name = "gptfast", mixinStandardHelpOptions = true, version = "gptfast4j 0.1.0",
        description = "Fast Llama-family text generation on the JVM.",
        subcommands = {GenerateCommand.class, BenchCommand.class, ServeCommand.class, ServeBenchCommand.class,
                QuantizeCommand.class, PerplexityCommand.class, TokenizeCommand.class, ChatCommand.class, DoctorCommand.class})
public final class GptFastCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (one of: "
                + String.join(", ", spec.subcommands().keySet()) + ")");
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new GptFastCli());
        cl.setParameterExceptionHandler((ex, args) -> {
            ex.getCommandLine().getErr().println("gptfast: " + oneLine(ex.getMessage()) + " (see --help)");
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            String message = ex instanceof GptFastException ? ex.getMessage() : ex.toString();
            commandLine.getErr().println("gptfast: error: " + oneLine(message));
            return 1;
        });
        return cl;
    }

    /**
     * A user's bad value becomes a usage error (exit 2); natives that cannot load are not the
     * arguments' fault and stay an execution error (exit 1).
     */
    static CommandLine.ParameterException argumentError(CommandLine.Model.CommandSpec spec, GptFastException e) {
        if (e instanceof ai.gptfast4j.natives.NativeLibraryException n) throw n;
        return new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
    }

    /** Errors are one line on stderr, whatever a message brings along. */
    static String oneLine(String message) {
        return message == null ? "" : message.strip().replaceAll("\\s*\\R\\s*", " ");
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
