package ai.gptfast4j;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The pieces of a SentencePiece model file (ModelProto, protobuf): each piece's string and type,
 * read in Java for display ({@code gptfast tokenize}) and for the control tokens that chat
 * templates write as strings ({@code <s>}, {@code [INST]}). Encoding and decoding stay native.
 */
final class SentencePieceModelFile {
    /** sentencepiece_model.proto's SentencePiece.Type values we use. */
    static final int NORMAL = 1, CONTROL = 3;

    record Piece(String text, int type) {}

    private SentencePieceModelFile() {}

    /** Whether the bytes start like a ModelProto: field 1 (pieces), length-delimited. */
    static boolean looksLikeModelProto(byte[] head) {
        return head.length > 2 && head[0] == 0x0A;
    }

    static List<Piece> pieces(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new GptFastException("cannot read tokenizer " + file + ": " + e.getMessage(), e);
        }
        try {
            ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            List<Piece> pieces = new ArrayList<>();
            while (in.hasRemaining()) {
                long key = varint(in);
                int field = (int) (key >>> 3), wire = (int) (key & 7);
                if (field == 1 && wire == 2) {
                    int len = (int) varint(in);
                    pieces.add(piece(in.slice(in.position(), len).order(ByteOrder.LITTLE_ENDIAN)));
                    in.position(in.position() + len);
                } else {
                    skip(in, wire);
                }
            }
            return pieces;
        } catch (RuntimeException e) {
            throw new GptFastException("tokenizer " + file + " is not a valid SentencePiece model: " + e, e);
        }
    }

    private static Piece piece(ByteBuffer in) {
        String text = "";
        int type = NORMAL;
        while (in.hasRemaining()) {
            long key = varint(in);
            int field = (int) (key >>> 3), wire = (int) (key & 7);
            if (field == 1 && wire == 2) {
                int len = (int) varint(in);
                text = new String(bytes(in, len), StandardCharsets.UTF_8);
            } else if (field == 3 && wire == 0) {
                type = (int) varint(in);
            } else {
                skip(in, wire);
            }
        }
        return new Piece(text, type);
    }

    private static byte[] bytes(ByteBuffer in, int len) {
        byte[] b = new byte[len];
        in.get(b);
        return b;
    }

    private static long varint(ByteBuffer in) {
        long v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            byte b = in.get();
            v |= (long) (b & 0x7F) << shift;
            if (b >= 0) return v;
        }
        throw new IllegalStateException("varint too long");
    }

    private static void skip(ByteBuffer in, int wire) {
        switch (wire) {
            case 0 -> varint(in);
            case 1 -> in.position(in.position() + 8);
            case 2 -> {
                int len = (int) varint(in);
                in.position(in.position() + len);
            }
            case 5 -> in.position(in.position() + 4);
            default -> throw new IllegalStateException("unsupported wire type " + wire);
        }
    }
}
