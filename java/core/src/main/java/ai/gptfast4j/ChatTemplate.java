package ai.gptfast4j;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A chat template: messages to prompt token ids. Templates are Jinja, rendered by jinjava the way
 * Hugging Face transformers renders them (trim_blocks, lstrip_blocks; {@code messages},
 * {@code bos_token}, {@code eos_token}, {@code add_generation_prompt}, {@code raise_exception}),
 * then encoded with special-token strings as special ids. Built in: {@code llama3} (Meta's
 * ChatFormat), {@code llama2}, {@code mistral} (v3: {@code [INST]} without spaces), and
 * {@code plain} for base models ("User: ..." / "Assistant: ..." lines, encoded as plain text after
 * BOS). {@link #forModel} picks the model's own: tokenizer_config.json's chat_template, else by
 * the tokenizer's special tokens (Llama 3 headers: llama3; a {@code [INST]} control token:
 * mistral), else plain.
 */
public final class ChatTemplate {
    public static final List<String> BUILTIN = List.of("llama3", "llama2", "mistral", "plain");
    private static final String PLAIN = "plain";

    /** One message of a conversation. */
    public record Message(String role, String content) {
        public Message {
            if (role == null) throw new GptFastException("a chat message needs a role");
            if (content == null) content = "";
        }
    }

    private final String name;
    private final String source;
    private final Jinjava jinjava;

    private ChatTemplate(String name, String source) {
        this.name = name;
        this.source = applyWhitespaceControl(source);
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true)
                .withFailOnUnknownTokens(false).build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        // parse once now, so that a malformed template fails at load, not at the first request
        RenderResult probe = jinjava.renderForResult(source, bindings(List.of(new Message("user", "x")), true, "", ""));
        for (TemplateError e : probe.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL && !isRaise(e)) {
                throw new GptFastException("chat template '" + name + "' is malformed: " + oneLine(e));
            }
        }
    }

    /**
     * Jinja's whitespace control, done here: jinjava ignores it on {@code {{- ... -}}} (Llama 3.1's
     * template is full of them), so "-" at a tag's edge strips all whitespace on that side.
     */
    static String applyWhitespaceControl(String source) {
        return source.replaceAll("\\s*(\\{[{%#])-", "$1").replaceAll("-([}%#]\\})\\s*", "$1");
    }

    public static ChatTemplate builtin(String name) {
        if (!BUILTIN.contains(name)) {
            throw new GptFastException("unknown chat template '" + name + "' (built in: " + String.join(", ", BUILTIN) + ")");
        }
        try (InputStream in = ChatTemplate.class.getResourceAsStream("chat_templates/" + name + ".jinja")) {
            if (in == null) throw new GptFastException("built-in chat template " + name + " missing from the jar");
            return new ChatTemplate(name, new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new GptFastException("cannot read built-in chat template " + name + ": " + e.getMessage(), e);
        }
    }

    /** A Jinja template given as text; name is used in messages. */
    public static ChatTemplate jinja(String name, String source) {
        return new ChatTemplate(name, source);
    }

    /**
     * {@code --chat-template}: a built-in name, a tokenizer_config.json (its chat_template), or a
     * file holding a Jinja template.
     */
    public static ChatTemplate named(String nameOrFile) {
        if (BUILTIN.contains(nameOrFile)) return builtin(nameOrFile);
        Path file = Path.of(nameOrFile);
        if (!Files.isRegularFile(file)) {
            throw new GptFastException("chat template '" + nameOrFile + "' is neither built in ("
                    + String.join(", ", BUILTIN) + ") nor a file");
        }
        if (file.getFileName().toString().endsWith(".json")) {
            TokenizerConfig config = TokenizerConfig.read(file);
            if (config.chatTemplate() == null) throw new GptFastException(file + " has no chat_template");
            return new ChatTemplate(file.toString(), config.chatTemplate());
        }
        try {
            return new ChatTemplate(file.toString(), Files.readString(file));
        } catch (IOException e) {
            throw new GptFastException("cannot read chat template " + file + ": " + e.getMessage(), e);
        }
    }

    /** The model's template: tokenizer_config.json in dir, else by the tokenizer's special tokens, else plain. */
    public static ChatTemplate forModel(Path dir, Tokenizer tokenizer) {
        TokenizerConfig config = dir == null ? TokenizerConfig.NONE : TokenizerConfig.besides(dir);
        if (config.chatTemplate() != null) return new ChatTemplate(String.valueOf(config.source()), config.chatTemplate());
        Map<String, Integer> specials = tokenizer.specialTokens();
        if (specials.containsKey("<|start_header_id|>") && specials.containsKey("<|eot_id|>")) return builtin("llama3");
        if (specials.containsKey("[INST]")) return builtin("mistral");
        return builtin(PLAIN);
    }

    public String name() {
        return name;
    }

    /** The prompt text the template makes (with add_generation_prompt). */
    public String render(List<Message> messages, String bosToken, String eosToken) {
        if (messages.isEmpty()) throw new GptFastException("a chat needs at least one message");
        RenderResult r = jinjava.renderForResult(source, bindings(messages, true, bosToken, eosToken));
        for (TemplateError e : r.getErrors()) {
            if (isRaise(e)) throw new GptFastException("chat template '" + name + "' refused the messages: " + raised(e));
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new GptFastException("chat template '" + name + "' failed: " + oneLine(e));
            }
        }
        return r.getOutput();
    }

    /**
     * Prompt ids for the messages: the rendered text with special-token strings as their ids (it
     * writes BOS itself); the plain template's text is plain text after BOS.
     */
    public int[] promptTokens(Tokenizer tokenizer, List<Message> messages) {
        if (name.equals(PLAIN)) return Engine.promptTokens(tokenizer, render(messages, "", ""), false);
        String text = render(messages, tokenText(tokenizer, tokenizer.bosId()), tokenText(tokenizer, tokenizer.eosId()));
        return tokenizer.encode(text, true);
    }

    /** The string of a special token as templates write it ("<|begin_of_text|>", "<s>"). */
    private static String tokenText(Tokenizer tokenizer, int id) {
        for (Map.Entry<String, Integer> e : tokenizer.specialTokens().entrySet()) if (e.getValue() == id) return e.getKey();
        return id >= 0 ? tokenizer.piece(id) : "";
    }

    private static Map<String, Object> bindings(List<Message> messages, boolean addGenerationPrompt, String bos,
                                                String eos) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            list.add(map);
        }
        Map<String, Object> b = new HashMap<>();
        b.put("messages", list);
        b.put("add_generation_prompt", addGenerationPrompt);
        b.put("bos_token", bos);
        b.put("eos_token", eos);
        return b;
    }

    /** Jinja's raise_exception(message), as Hugging Face templates call it. */
    public static String raiseException(String message) {
        throw new TemplateRaised(message);
    }

    private static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) {
            super(message);
        }
    }

    private static final String RAISED = TemplateRaised.class.getName();

    private static boolean isRaise(TemplateError e) {
        return e.getException() != null && causeOf(e.getException()) != null
                || e.getMessage() != null && e.getMessage().contains(RAISED);
    }

    private static TemplateRaised causeOf(Throwable t) {
        for (; t != null; t = t.getCause()) if (t instanceof TemplateRaised r) return r;
        return null;
    }

    private static String raised(TemplateError e) {
        TemplateRaised r = e.getException() == null ? null : causeOf(e.getException());
        if (r != null) return r.getMessage();
        String m = e.getMessage();
        int at = m.indexOf(RAISED);
        return oneLine(at < 0 ? m : m.substring(at + RAISED.length()).replaceFirst("^[:\\s]+", ""));
    }

    private static String oneLine(TemplateError e) {
        return oneLine(e.getMessage()) + (e.getLineno() > 0 ? " (line " + e.getLineno() + ")" : "");
    }

    private static String oneLine(String s) {
        if (s == null) return "unknown error";
        return s.lines().findFirst().orElse("").trim();
    }
}
