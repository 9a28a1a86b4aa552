// Prints Jackson's JSON for a java.util.Properties and a java.util.HashMap filled with the keys of
// each input line (tab-separated, each key its own value), one line each: the reference the Python
// key-order and escaping code is checked against (test_zk_jvm_order.py).
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Properties;

public class JvmJsonOrder {
  public static void main(String[] args) throws Exception {
    ObjectMapper mapper = new ObjectMapper();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      Properties props = new Properties();
      HashMap<String, String> map = new HashMap<>();
      for (String key : line.isEmpty() ? new String[0] : line.split("\t", -1)) {
        props.setProperty(key, key);
        map.put(key, key);
      }
      System.out.write(mapper.writeValueAsBytes(props));
      System.out.write('\n');
      System.out.write(mapper.writeValueAsBytes(map));
      System.out.write('\n');
    }
    System.out.flush();
  }
}
