"""ComfyUI entry point: the Textual Inversion nodes (``nodes/``) and their frontend extension (``web/``)."""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    # Imported here, not at module level, so nothing of ComfyUI is needed to import this package elsewhere.
    from .nodes.extension import TextualInversionExtension

    return TextualInversionExtension()
