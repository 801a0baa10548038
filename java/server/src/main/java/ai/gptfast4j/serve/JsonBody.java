package ai.gptfast4j.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Request bodies: parsed with Jackson into a JSON object, then read key by key with type checks.
 * Unknown keys are ignored; a JSON null counts as absent; every problem is an
 * {@link ApiException} (400) naming the key and what was wrong.
 */
final class JsonBody {
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

    private JsonBody() {}

    static ObjectNode parse(byte[] body) {
        if (body == null || body.length == 0) throw ApiException.badRequest("request body is empty: expected a JSON object");
        JsonNode n;
        try {
            n = MAPPER.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiException.badRequest("malformed JSON in request body: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw ApiException.badRequest("unreadable request body: " + e.getMessage());
        }
        if (n == null || n.isMissingNode()) throw ApiException.badRequest("request body is empty: expected a JSON object");
        if (!n.isObject()) throw ApiException.badRequest("request body must be a JSON object, got " + kind(n));
        return (ObjectNode) n;
    }

    static boolean has(ObjectNode o, String key) {
        JsonNode v = o.get(key);
        return v != null && !v.isNull();
    }

    static String string(ObjectNode o, String key) {
        if (!has(o, key)) return null;
        JsonNode v = o.get(key);
        if (!v.isTextual()) throw wrongType(key, "a string", v);
        return v.asText();
    }

    static Integer integer(ObjectNode o, String key) {
        if (!has(o, key)) return null;
        JsonNode v = o.get(key);
        if (!v.isIntegralNumber()) throw wrongType(key, "an integer", v);
        if (!v.canConvertToInt()) throw ApiException.badRequest("'" + key + "' is out of range: " + v);
        return v.asInt();
    }

    static Long longInteger(ObjectNode o, String key) {
        if (!has(o, key)) return null;
        JsonNode v = o.get(key);
        if (!v.isIntegralNumber()) throw wrongType(key, "an integer", v);
        if (!v.canConvertToLong()) throw ApiException.badRequest("'" + key + "' is out of range: " + v);
        return v.asLong();
    }

    static Double number(ObjectNode o, String key) {
        if (!has(o, key)) return null;
        JsonNode v = o.get(key);
        if (!v.isNumber()) throw wrongType(key, "a number", v);
        return v.asDouble();
    }

    static Boolean bool(ObjectNode o, String key) {
        if (!has(o, key)) return null;
        JsonNode v = o.get(key);
        if (!v.isBoolean()) throw wrongType(key, "true or false", v);
        return v.asBoolean();
    }

    static ApiException wrongType(String key, String expected, JsonNode v) {
        return ApiException.badRequest("'" + key + "' must be " + expected + ", got " + kind(v));
    }

    static String kind(JsonNode v) {
        String text = v.toString();
        if (text.length() > 40) text = text.substring(0, 40) + "...";
        String type = switch (v.getNodeType()) {
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case NULL -> "null";
            default -> v.getNodeType().name().toLowerCase();
        };
        return type + " (" + text + ")";
    }
}
