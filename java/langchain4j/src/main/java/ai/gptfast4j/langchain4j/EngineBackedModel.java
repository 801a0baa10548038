package ai.gptfast4j.langchain4j;

import ai.gptfast4j.ChatTemplate;
import ai.gptfast4j.Defaults;
import ai.gptfast4j.EmbeddedModel;
import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import java.nio.file.Path;

/**
 * What both LangChain4j models hold: an engine (given and shared, or loaded and owned), the chat
 * template, the seed (LangChain4j's request parameters have none) and the default parameters.
 */
abstract class EngineBackedModel implements AutoCloseable {
    final Engine engine;
    private final boolean ownsEngine;
    final ChatTemplate template;
    final long seed;
    final String modelName;
    final ChatRequestParameters defaults;

    EngineBackedModel(Builder<?> b) {
        if (b.engine != null && b.options != null) throw new IllegalArgumentException("give engine(...) or a checkpoint, not both");
        ownsEngine = b.engine == null;
        engine = ownsEngine ? Engine.load(b.options != null ? b.options : EngineOptions.of(EmbeddedModel.checkpoint())) : b.engine;
        template = b.chatTemplate == null ? null : ChatTemplate.named(b.chatTemplate);
        seed = b.seed;
        modelName = b.modelName != null ? b.modelName
                : b.options != null ? b.options.checkpoint().getFileName().toString()
                : b.engine != null ? "gptfast4j" : EmbeddedModel.NAME;
        defaults = GptFastChatModels.defaults(modelName, b.defaultRequestParameters);
    }

    public ChatRequestParameters defaultRequestParameters() {
        return defaults;
    }

    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }

    /** The engine, for callers that want its tokenizer or statistics. */
    public Engine engine() {
        return engine;
    }

    /** Closes the engine if this model loaded it (not one passed to {@code engine(...)}). */
    @Override
    public void close() {
        if (ownsEngine) engine.close();
    }

    @SuppressWarnings("unchecked")
    abstract static class Builder<B extends Builder<B>> {
        private Engine engine;
        private EngineOptions options;
        private String chatTemplate;
        private long seed = Defaults.SEED;
        private String modelName;
        private ChatRequestParameters defaultRequestParameters;

        /** Use this engine (the caller closes it). Without engine or checkpoint: the embedded stories260K. */
        public B engine(Engine engine) { this.engine = engine; return (B) this; }
        /** Load this checkpoint with default options; the model owns and closes the engine. */
        public B checkpoint(Path checkpoint) { this.options = EngineOptions.of(checkpoint); return (B) this; }
        /** Load with these options; the model owns and closes the engine. */
        public B engineOptions(EngineOptions options) { this.options = options; return (B) this; }
        /** A built-in template name (llama3, llama2, mistral, plain) or a Jinja file; default: the model's own. */
        public B chatTemplate(String nameOrFile) { this.chatTemplate = nameOrFile; return (B) this; }
        /** Sampling seed of every request (same seed and request: same answer). */
        public B seed(long seed) { this.seed = seed; return (B) this; }
        public B modelName(String name) { this.modelName = name; return (B) this; }
        /** Defaults for temperature, top-k, top-p, max output tokens, stop sequences, penalties. */
        public B defaultRequestParameters(ChatRequestParameters p) { this.defaultRequestParameters = p; return (B) this; }
    }
}
