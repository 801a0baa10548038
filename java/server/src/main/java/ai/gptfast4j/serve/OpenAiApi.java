package ai.gptfast4j.serve;

import ai.gptfast4j.ChatTemplate;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GptFastException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * OpenAI-compatible routes: {@code POST /v1/completions}, {@code POST /v1/chat/completions}
 * (messages through the model's chat template), {@code GET /v1/models}; {@code "stream": true}
 * answers Server-Sent Events ending with {@code data: [DONE]}. Sampling: max_tokens (or
 * max_completion_tokens), temperature, top_p, stop, presence_penalty, frequency_penalty, seed,
 * and as in vLLM top_k, repetition_penalty, min_tokens. Options the engine cannot honour (n > 1,
 * logprobs, echo, suffix) are rejected with a 400 naming them rather than ignored. Errors: {@code {"error":{"message","type","param","code"}}}.
 */
final class OpenAiApi {
    private final GptServer server;
    private final ServeConfig config;
    private final long created = System.currentTimeMillis() / 1000;

    OpenAiApi(GptServer server) {
        this.server = server;
        this.config = server.config();
    }

    void register(Javalin app) {
        app.get("/v1/models", ctx -> GptServer.json(ctx, Map.of("object", "list", "data", List.of(modelCard()))));
        app.get("/v1/models/{model}", ctx -> {
            checkModel(ctx.pathParam("model"));
            GptServer.json(ctx, modelCard());
        });
        app.post("/v1/completions", ctx -> generate(ctx, false));
        app.post("/v1/chat/completions", ctx -> generate(ctx, true));
    }

    private Map<String, Object> modelCard() {
        return Map.of("id", config.modelName(), "object", "model", "created", created, "owned_by", "gptfast4j");
    }

    private void checkModel(String model) {
        if (model != null && !model.equals(config.modelName())) throw ApiException.modelNotFound(model, config.modelName());
    }

    private void generate(Context ctx, boolean chat) throws InterruptedException {
        ObjectNode body = JsonBody.parse(server.readBody(ctx));
        checkModel(JsonBody.string(body, "model"));
        String prompt = chat ? null : completionPrompt(body);
        int[] promptIds = null;
        if (chat) {
            List<ChatTemplate.Message> messages = chatMessages(body);
            try {
                promptIds = server.scheduler().chatPromptTokens(messages);
            } catch (GptFastException e) {
                throw ApiException.badRequest(e.getMessage());
            }
        }
        rejectUnsupported(body, chat);
        Integer max = JsonBody.integer(body, "max_tokens");
        String maxKey = "max_tokens";
        if (max == null && chat) {
            max = JsonBody.integer(body, "max_completion_tokens");
            maxKey = "max_completion_tokens";
        }
        List<String> stop = stopSequences(body);
        Double topP = JsonBody.number(body, "top_p");
        Double presence = JsonBody.number(body, "presence_penalty");
        Double frequency = JsonBody.number(body, "frequency_penalty");
        Double repetition = JsonBody.number(body, "repetition_penalty");
        Integer minTokens = JsonBody.integer(body, "min_tokens");
        Boolean cachePrompt = JsonBody.bool(body, "cache_prompt");  // llama.cpp's name
        GenerationParams params = GptHandler.sampling(config, max, maxKey, JsonBody.number(body, "temperature"),
                JsonBody.integer(body, "top_k"), JsonBody.longInteger(body, "seed"), b -> {
                    b.stopSequences(stop);
                    if (topP != null) b.topP(topP.floatValue());
                    if (presence != null) b.presencePenalty(presence.floatValue());
                    if (frequency != null) b.frequencyPenalty(frequency.floatValue());
                    if (repetition != null) b.repetitionPenalty(repetition.floatValue());
                    if (minTokens != null) b.minNewTokens(minTokens);
                    if (cachePrompt != null) b.cachePrompt(cachePrompt);
                });
        boolean stream = Boolean.TRUE.equals(JsonBody.bool(body, "stream"));
        boolean includeUsage = false;
        if (JsonBody.has(body, "stream_options")) {
            JsonNode so = body.get("stream_options");
            if (!so.isObject()) throw JsonBody.wrongType("stream_options", "an object", so);
            includeUsage = Boolean.TRUE.equals(JsonBody.bool((ObjectNode) so, "include_usage"));
        }
        long deadline = server.streamer().deadline();
        GenerationJob job = server.scheduler().submit(new GenerationRequest(prompt, promptIds, params, stream));
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        long now = System.currentTimeMillis() / 1000;
        if (stream) {
            server.streamer().stream(ctx, job, deadline, new Sse(id, now, chat, includeUsage), GptServer.clientGone(ctx));
            return;
        }
        GenerationResult r = server.streamer().await(job, deadline, GptServer.clientGone(ctx));
        Map<String, Object> choice = new LinkedHashMap<>();
        choice.put("index", 0);
        if (chat) {
            choice.put("message", Map.of("role", "assistant", "content", r.completion().stripLeading()));
        } else {
            choice.put("text", r.completion());
            choice.put("logprobs", null);
        }
        choice.put("finish_reason", finishReason(r));
        Map<String, Object> out = envelope(id, now, chat ? "chat.completion" : "text_completion");
        out.put("choices", List.of(choice));
        out.put("usage", usage(r));
        GptServer.json(ctx, out);
    }

    private static String completionPrompt(ObjectNode body) {
        if (!JsonBody.has(body, "prompt")) throw ApiException.badRequest("'prompt' is required");
        JsonNode p = body.get("prompt");
        if (p.isTextual()) return p.asText();
        if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) return p.get(0).asText();
        if (p.isArray()) throw ApiException.badRequest("'prompt' must be a string or an array of one string "
                + "(batches and token-id prompts are not supported), got " + JsonBody.kind(p));
        throw JsonBody.wrongType("prompt", "a string", p);
    }

    /**
     * The conversation of a chat request; roles are system, developer (a system message), user and
     * assistant. The model's chat template (see {@link ChatTemplate#forModel}) turns it into ids.
     */
    static List<ChatTemplate.Message> chatMessages(ObjectNode body) {
        if (!JsonBody.has(body, "messages")) throw ApiException.badRequest("'messages' is required");
        JsonNode messages = body.get("messages");
        if (!messages.isArray()) throw JsonBody.wrongType("messages", "an array", messages);
        if (messages.isEmpty()) throw ApiException.badRequest("'messages' must not be empty");
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String key = "messages[" + i + "]";
            if (!m.isObject()) throw JsonBody.wrongType(key, "an object", m);
            String role = JsonBody.string((ObjectNode) m, "role");
            if (role == null) throw ApiException.badRequest("'" + key + ".role' is required");
            String content = messageText(m.get("content"), key + ".content");
            switch (role) {
                case "system", "developer" -> out.add(new ChatTemplate.Message("system", content));
                case "user", "assistant" -> out.add(new ChatTemplate.Message(role, content));
                default -> throw ApiException.badRequest("'" + key + ".role' must be system, developer, user or "
                        + "assistant, got \"" + role + "\"");
            }
        }
        return out;
    }

    private static String messageText(JsonNode content, String key) {
        if (content == null || content.isNull()) return "";
        if (content.isTextual()) return content.asText();
        if (content.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (JsonNode part : content) {
                if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiException.badRequest("'" + key + "' parts must be {\"type\":\"text\",\"text\":...} "
                            + "(only text is supported), got " + JsonBody.kind(part));
                }
                sb.append(part.get("text").asText());
            }
            return sb.toString();
        }
        throw JsonBody.wrongType(key, "a string or an array of text parts", content);
    }

    private static void rejectUnsupported(ObjectNode body, boolean chat) {
        Integer n = JsonBody.integer(body, "n");
        if (n != null && n != 1) throw ApiException.badRequest("'n' must be 1 (one choice per request), got " + n);
        if (chat) {
            Boolean lp = JsonBody.bool(body, "logprobs");
            if (Boolean.TRUE.equals(lp)) throw ApiException.badRequest("'logprobs' is not supported");
        } else {
            Integer lp = JsonBody.integer(body, "logprobs");
            if (lp != null && lp != 0) throw ApiException.badRequest("'logprobs' is not supported");
            if (Boolean.TRUE.equals(JsonBody.bool(body, "echo"))) throw ApiException.badRequest("'echo' is not supported");
            String suffix = JsonBody.string(body, "suffix");
            if (suffix != null && !suffix.isEmpty()) throw ApiException.badRequest("'suffix' is not supported");
        }
    }

    /** OpenAI's stop: a string or an array of up to 4 strings. */
    private static List<String> stopSequences(ObjectNode body) {
        if (!JsonBody.has(body, "stop")) return List.of();
        JsonNode stop = body.get("stop");
        if (stop.isTextual()) return List.of(stop.asText());
        if (!stop.isArray()) throw JsonBody.wrongType("stop", "a string or an array of strings", stop);
        if (stop.size() > 4) throw ApiException.badRequest("'stop' takes at most 4 sequences, got " + stop.size());
        List<String> out = new ArrayList<>();
        for (JsonNode s : stop) {
            if (!s.isTextual()) throw JsonBody.wrongType("stop", "a string or an array of strings", stop);
            out.add(s.asText());
        }
        return out;
    }

    static String finishReason(GenerationResult r) {
        return switch (r.stopReason()) {
            case STOP_TOKEN, STOP_SEQUENCE, CANCELLED -> "stop";
            case MAX_NEW_TOKENS, CONTEXT_FULL -> "length";
        };
    }

    private static Map<String, Object> usage(GenerationResult r) {
        int prompt = r.promptTokens().length;
        int completion = r.generatedTokens().length;
        Map<String, Object> usage = new LinkedHashMap<>();
        usage.put("prompt_tokens", prompt);
        usage.put("completion_tokens", completion);
        usage.put("total_tokens", prompt + completion);
        // OpenAI's field for prompt tokens served from a cache (here: a slot's KV cache)
        usage.put("prompt_tokens_details", Map.of("cached_tokens", r.stats().cachedPromptTokens()));
        return usage;
    }

    private Map<String, Object> envelope(String id, long createdAt, String object) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", id);
        m.put("object", object);
        m.put("created", createdAt);
        m.put("model", config.modelName());
        return m;
    }

    /** Server-Sent Events in OpenAI's chunk format. */
    private final class Sse implements TokenStreamer.Framing {
        private final String id;
        private final long createdAt;
        private final boolean chat;
        private final boolean includeUsage;
        private boolean contentStarted;

        Sse(String id, long createdAt, boolean chat, boolean includeUsage) {
            this.id = id;
            this.createdAt = createdAt;
            this.chat = chat;
            this.includeUsage = includeUsage;
        }

        @Override public String contentType() { return "text/event-stream; charset=utf-8"; }

        @Override
        public byte[] start() {
            return chat ? event(chunk(Map.of("role", "assistant", "content", ""), null)) : new byte[0];
        }

        @Override
        public byte[] piece(String text) {
            if (chat && !contentStarted) {
                text = text.stripLeading(); // as in the non-streaming answer
                if (text.isEmpty()) return new byte[0];
                contentStarted = true;
            }
            return event(chat ? chunk(Map.of("content", text), null) : chunk(text, null));
        }

        @Override
        public byte[] end(GenerationResult r) {
            StringBuilder sb = new StringBuilder();
            sb.append(new String(event(chat ? chunk(Map.of(), finishReason(r)) : chunk("", finishReason(r))),
                    StandardCharsets.UTF_8));
            if (includeUsage) {
                Map<String, Object> u = envelope(id, createdAt, chat ? "chat.completion.chunk" : "text_completion");
                u.put("choices", List.of());
                u.put("usage", usage(r));
                sb.append(new String(event(u), StandardCharsets.UTF_8));
            }
            sb.append("data: [DONE]\n\n");
            return sb.toString().getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public byte[] error(ApiException e) {
            Map<String, Object> error = new LinkedHashMap<>();
            error.put("message", e.getMessage());
            error.put("type", e.type());
            error.put("code", e.code());
            return (new String(event(Map.of("error", error)), StandardCharsets.UTF_8) + "data: [DONE]\n\n")
                    .getBytes(StandardCharsets.UTF_8);
        }

        /** chat: delta is a map; completions: delta is the text. */
        private Map<String, Object> chunk(Object delta, String finishReason) {
            Map<String, Object> choice = new LinkedHashMap<>();
            choice.put("index", 0);
            if (chat) {
                choice.put("delta", delta);
            } else {
                choice.put("text", delta);
                choice.put("logprobs", null);
            }
            choice.put("finish_reason", finishReason);
            Map<String, Object> m = envelope(id, createdAt, chat ? "chat.completion.chunk" : "text_completion");
            m.put("choices", List.of(choice));
            return m;
        }

        private byte[] event(Object payload) {
            try {
                return ("data: " + JsonBody.MAPPER.writeValueAsString(payload) + "\n\n").getBytes(StandardCharsets.UTF_8);
            } catch (JsonProcessingException ex) {
                throw new IllegalStateException(ex);
            }
        }
    }
}
