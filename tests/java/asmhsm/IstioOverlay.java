package asmhsm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * What istioctl does with the {@code components.<name>.k8s.overlays} of IstioOperator files given
 * with {@code -f}, for the runbook test's stand-in istioctl: each patch's path is walked through
 * the rendered object (dots between keys, {@code [key:value]} picks a list element, {@code [N]} an
 * index), missing maps on the way are created; at the end of the path the value replaces what is
 * there, also a whole list, except at {@code [-1]}, which appends to the list. As the real
 * istioctl of ASM's source (its operator/pkg/patch reads the object into untyped maps, where a map
 * value on a list path replaces the list: run by hand, manifest generate), independently of lib/Istio,
 * so that the overlay install-asm writes is applied by other code than the code that wrote it.
 *
 * <p>{@code java asmhsm.IstioOverlay FILE...} reads a multi-document manifest on stdin and writes
 * it, patched, to stdout.
 */
final class IstioOverlay {
    private IstioOverlay() {}

    /** Applies the overlays of every IstioOperator document to the objects they name (kind and name). */
    @SuppressWarnings("unchecked")
    static void apply(List<Map<String, Object>> objects, List<Map<String, Object>> operators) {
        for (Map<String, Object> iop : operators) {
            Object components = at(iop, "spec", "components");
            if (!(components instanceof Map<?, ?> cs)) continue;
            for (Object component : cs.values()) {
                Object overlays = component instanceof Map<?, ?> c && c.get("k8s") instanceof Map<?, ?> k8s ? k8s.get("overlays") : null;
                if (!(overlays instanceof List<?> list)) continue;
                for (Object o : list) {
                    Map<String, Object> overlay = (Map<String, Object>) o;
                    Map<String, Object> target = find(objects, (String) overlay.get("kind"), (String) overlay.get("name"));
                    if (target == null) throw new IllegalArgumentException("overlay for " + overlay.get("kind") + " " + overlay.get("name") + ": no such object");
                    for (Object p : (List<Object>) overlay.getOrDefault("patches", List.of())) {
                        Map<String, Object> patch = (Map<String, Object>) p;
                        write(target, (String) patch.get("path"), patch.get("value"));
                    }
                }
            }
        }
    }

    private static Map<String, Object> find(List<Map<String, Object>> objects, String kind, String name) {
        for (Map<String, Object> o : objects)
            if (kind.equals(o.get("kind")) && name.equals(at(o, "metadata", "name"))) return o;
        return null;
    }

    private static Object at(Map<String, Object> m, String... keys) {
        Object node = m;
        for (String k : keys) node = node instanceof Map<?, ?> map ? map.get(k) : null;
        return node;
    }

    @SuppressWarnings("unchecked")
    static void write(Map<String, Object> root, String path, Object value) {
        String[] parts = path.split("\\.(?![^\\[]*])");
        Object node = root;
        for (int i = 0; i < parts.length; i++) {
            String part = parts[i];
            boolean last = i == parts.length - 1;
            if (part.startsWith("[") && part.endsWith("]")) {
                List<Object> list = (List<Object>) node;
                String sel = part.substring(1, part.length() - 1);
                Object chosen = null;
                int colon = sel.indexOf(':');
                if (sel.equals("-1") && last) {
                    list.add(value);
                    return;
                }
                if (colon < 0) chosen = list.get(Integer.parseInt(sel));
                else for (Object e : list)
                    if (e instanceof Map<?, ?> em && sel.substring(colon + 1).equals(String.valueOf(em.get(sel.substring(0, colon))))) chosen = e;
                if (chosen == null) throw new IllegalArgumentException(path + ": no list element " + part);
                if (last) {
                    list.set(list.indexOf(chosen), value);
                    return;
                }
                node = chosen;
                continue;
            }
            Map<String, Object> map = (Map<String, Object>) node;
            if (last) {
                map.put(part, value);
                return;
            }
            Object next = map.get(part);
            if (next == null) {
                next = parts[i + 1].startsWith("[") ? new ArrayList<>() : new LinkedHashMap<String, Object>();
                map.put(part, next);
            }
            node = next;
        }
    }

    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws IOException {
        YAMLMapper yaml = YAMLMapper.builder().build();
        List<Map<String, Object>> objects = new ArrayList<>();
        String manifest = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        for (String doc : manifest.split("(?m)^---\\s*$"))
            if (!doc.isBlank()) objects.add(yaml.readValue(doc, Map.class));
        List<Map<String, Object>> operators = new ArrayList<>();
        for (String file : args)
            for (String doc : Files.readString(Path.of(file)).split("(?m)^---\\s*$"))
                if (!doc.isBlank()) operators.add(yaml.readValue(doc, Map.class));
        apply(objects, operators);
        StringBuilder out = new StringBuilder();
        for (Map<String, Object> o : objects) out.append("---\n").append(yaml.writeValueAsString(o).replaceFirst("^---\n", ""));
        System.out.print(out);
    }
}
