"""Safe YAML for untrusted text: SafeLoader (no objects) and a cap on aliases (no billion laughs)."""
import yaml

MAX_ALIASES = 100


class BoundedLoader(yaml.SafeLoader):
    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError("excessive aliasing in YAML document")
        return super().compose_node(parent, index)


def load(text, loader_class=BoundedLoader):
    """Parse one YAML document; raises yaml.YAMLError on bad syntax or excessive aliasing."""
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else error.__class__.__name__
