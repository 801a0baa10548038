package ai.gptfast4j;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Reads a torch.save zip of a flat state dict in Java (the pickle opcodes torch.save writes with
 * protocol 2), independently of the native loader: for tests that rewrite a GPT-Fast checkpoint
 * into other formats. Tensors must be contiguous.
 */
final class TorchPth {
    /** A tensor's raw little-endian bytes, its dtype ("BF16", "F32", ...) and shape. */
    record Tensor(String dtype, long[] shape, byte[] data) {
        int elementSize() { return data.length / (int) Math.max(1, numel()); }
        long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    private record Global(String module, String name) {}
    private record Storage(String dtype, String key) {}
    private record Mark() {}
    private static final Mark MARK = new Mark();

    private TorchPth() {}

    static Map<String, Tensor> read(Path file) throws IOException {
        try (ZipFile zip = new ZipFile(file.toFile())) {
            ZipEntry pkl = zip.stream().filter(e -> e.getName().endsWith("/data.pkl")).findFirst().orElseThrow();
            String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            ByteBuffer in = ByteBuffer.wrap(zip.getInputStream(pkl).readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
            Object root = unpickle(in);
            Map<String, Tensor> out = new LinkedHashMap<>();
            Map<String, byte[]> storages = new HashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) root).entrySet()) {
                Object[] t = (Object[]) e.getValue();  // storage, offset, shape, stride
                Storage s = (Storage) t[0];
                byte[] all = storages.computeIfAbsent(s.key(), k -> {
                    try {
                        return zip.getInputStream(zip.getEntry(prefix + "data/" + k)).readAllBytes();
                    } catch (IOException ex) {
                        throw new java.io.UncheckedIOException(ex);
                    }
                });
                long[] shape = (long[]) t[2];
                int size = s.dtype().equals("F32") ? 4 : 2;
                long numel = 1;
                for (long d : shape) numel *= d;
                int from = (int) ((long) t[1] * size);
                out.put((String) e.getKey(), new Tensor(s.dtype(), shape,
                        java.util.Arrays.copyOfRange(all, from, from + (int) (numel * size))));
            }
            return out;
        }
    }

    private static Object unpickle(ByteBuffer in) {
        Deque<Object> stack = new ArrayDeque<>();
        Map<Integer, Object> memo = new HashMap<>();
        while (true) {
            int op = in.get() & 0xFF;
            switch (op) {
                case 0x80 -> in.get();                                   // PROTO
                case '}' -> stack.push(new LinkedHashMap<Object, Object>());
                case ']' -> stack.push(new ArrayList<>());
                case ')' -> stack.push(new Object[0]);
                case 'N' -> stack.push(NONE);
                case 0x88 -> stack.push(Boolean.TRUE);
                case 0x89 -> stack.push(Boolean.FALSE);
                case 'q' -> memo.put(in.get() & 0xFF, stack.peek());
                case 'r' -> memo.put(in.getInt(), stack.peek());
                case 'h' -> stack.push(memo.get(in.get() & 0xFF));
                case 'j' -> stack.push(memo.get(in.getInt()));
                case '(' -> stack.push(MARK);
                case 'X' -> stack.push(string(in, in.getInt()));
                case 0x8c -> stack.push(string(in, in.get() & 0xFF));
                case 'K' -> stack.push((long) (in.get() & 0xFF));
                case 'M' -> stack.push((long) (in.getShort() & 0xFFFF));
                case 'J' -> stack.push((long) in.getInt());
                case 0x8a -> {                                           // LONG1
                    int n = in.get() & 0xFF;
                    long v = 0;
                    for (int i = 0; i < n; i++) v |= (long) (in.get() & 0xFF) << (8 * i);
                    stack.push(v);
                }
                case 'c' -> stack.push(new Global(line(in), line(in)));
                case 't' -> stack.push(popToMark(stack).toArray());
                case 0x85 -> stack.push(new Object[] {stack.pop()});
                case 0x86 -> {
                    Object b = stack.pop(), a = stack.pop();
                    stack.push(new Object[] {a, b});
                }
                case 0x87 -> {
                    Object c = stack.pop(), b = stack.pop(), a = stack.pop();
                    stack.push(new Object[] {a, b, c});
                }
                case 'Q' -> {                                            // BINPERSID: ('storage', type, key, device, numel)
                    Object[] id = (Object[]) stack.pop();
                    String type = ((Global) id[1]).name();
                    stack.push(new Storage(switch (type) {
                        case "BFloat16Storage" -> "BF16";
                        case "HalfStorage" -> "F16";
                        case "FloatStorage" -> "F32";
                        default -> throw new IllegalStateException("unsupported storage " + type);
                    }, (String) id[2]));
                }
                case 'R' -> {
                    Object[] args = (Object[]) stack.pop();
                    Global f = (Global) stack.pop();
                    if (f.name().equals("OrderedDict")) stack.push(new LinkedHashMap<Object, Object>());
                    else if (f.name().equals("_rebuild_tensor_v2")) {
                        stack.push(new Object[] {args[0], args[1], longs((Object[]) args[2]), longs((Object[]) args[3])});
                    } else throw new IllegalStateException("unsupported callable " + f);
                }
                case 'u' -> {
                    List<Object> items = popToMark(stack);
                    @SuppressWarnings("unchecked") Map<Object, Object> map = (Map<Object, Object>) stack.peek();
                    for (int i = 0; i < items.size(); i += 2) map.put(items.get(i), items.get(i + 1));
                }
                case 's' -> {
                    Object v = stack.pop(), k = stack.pop();
                    @SuppressWarnings("unchecked") Map<Object, Object> map = (Map<Object, Object>) stack.peek();
                    map.put(k, v);
                }
                case 'b' -> stack.pop();                                 // BUILD: state ignored
                case '.' -> {
                    return stack.pop();
                }
                default -> throw new IllegalStateException("unsupported pickle opcode 0x" + Integer.toHexString(op));
            }
        }
    }

    private static final Object NONE = new Object();

    private static long[] longs(Object[] xs) {
        long[] r = new long[xs.length];
        for (int i = 0; i < r.length; i++) r[i] = (Long) xs[i];
        return r;
    }

    private static List<Object> popToMark(Deque<Object> stack) {
        List<Object> items = new ArrayList<>();
        for (Object o; (o = stack.pop()) != MARK; ) items.add(0, o);
        return items;
    }

    private static String string(ByteBuffer in, int n) {
        byte[] b = new byte[n];
        in.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private static String line(ByteBuffer in) {
        StringBuilder sb = new StringBuilder();
        for (byte b; (b = in.get()) != '\n'; ) sb.append((char) b);
        return sb.toString();
    }
}
