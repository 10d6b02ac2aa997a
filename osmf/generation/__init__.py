"""Generation: best-of-N background prompts scored by the GRM (``candidates``) and the renderers
(``rendering``: retrieval from the lake's historical creatives, or diffusers on a GPU)."""
