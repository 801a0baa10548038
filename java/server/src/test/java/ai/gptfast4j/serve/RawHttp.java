package ai.gptfast4j.serve;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** HTTP/1.1 over a plain socket, for what java.net.http will not send (Host, Origin, oversized or broken requests). */
final class RawHttp {
    record Response(int status, Map<String, String> headers, String body) {
        String header(String name) { return headers.get(name.toLowerCase(Locale.ROOT)); }
    }

    private RawHttp() {}

    /** Sends the request head (CRLF line ends added, Connection: close appended) and body; reads the answer to EOF. */
    static Response send(int port, String head, byte[] body) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(60_000);
            OutputStream out = s.getOutputStream();
            String h = head.replace("\n", "\r\n") + (head.endsWith("\n") ? "" : "\r\n") + "Connection: close\r\n\r\n";
            out.write(h.getBytes(StandardCharsets.ISO_8859_1));
            if (body != null) out.write(body);
            out.flush();
            return parse(s.getInputStream().readAllBytes());
        }
    }

    static Response request(int port, String method, String path, Map<String, String> headers, String body)
            throws IOException {
        byte[] b = body == null ? null : body.getBytes(StandardCharsets.UTF_8);
        StringBuilder head = new StringBuilder(method + " " + path + " HTTP/1.1\n");
        if (!headers.containsKey("Host")) head.append("Host: 127.0.0.1:").append(port).append('\n');
        headers.forEach((k, v) -> head.append(k).append(": ").append(v).append('\n'));
        if (b != null) head.append("Content-Type: application/json\nContent-Length: ").append(b.length).append('\n');
        return send(port, head.toString(), b);
    }

    static Response parse(byte[] raw) throws IOException {
        String all = new String(raw, StandardCharsets.ISO_8859_1);
        int split = all.indexOf("\r\n\r\n");
        if (split < 0) throw new IOException("no complete response head: " + all);
        String[] lines = all.substring(0, split).split("\r\n");
        int status = Integer.parseInt(lines[0].split(" ")[1]);
        Map<String, String> headers = new LinkedHashMap<>();
        for (int i = 1; i < lines.length; i++) {
            int c = lines[i].indexOf(':');
            headers.put(lines[i].substring(0, c).trim().toLowerCase(Locale.ROOT), lines[i].substring(c + 1).trim());
        }
        byte[] rest = java.util.Arrays.copyOfRange(raw, split + 4, raw.length);
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) rest = dechunk(rest);
        return new Response(status, headers, new String(rest, StandardCharsets.UTF_8));
    }

    private static byte[] dechunk(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        InputStream in = new java.io.ByteArrayInputStream(b);
        while (true) {
            StringBuilder line = new StringBuilder();
            int c;
            while ((c = in.read()) != -1 && c != '\n') if (c != '\r') line.append((char) c);
            if (c == -1) throw new IOException("chunked body ended without its last chunk");
            int size = Integer.parseInt(line.toString().split(";")[0].trim(), 16);
            if (size == 0) return out.toByteArray();
            out.write(in.readNBytes(size));
            in.read();
            in.read();
        }
    }
}
