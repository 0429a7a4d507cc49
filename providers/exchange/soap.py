"""SOAP envelopes of the EWS emulator: namespaces, request parsing, response messages and faults.

Shapes follow ../shared/providers/exchange-ews.md section 1: one `m:<Op>ResponseMessage` per input inside
`m:<Op>Response/m:ResponseMessages`, per-item errors inside the message with HTTP 200, SOAP Faults (HTTP 500)
for request-level failures. No fault here ever uses the codes that make exchangelib retry every older
RequestServerVersion (ErrorInvalidRequest, ErrorInvalidServerVersion, ErrorIncorrectSchemaVersion, ...).
"""

from __future__ import annotations

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": SOAP, "m": M, "t": T}
CONTENT_TYPE = "text/xml; charset=utf-8"
EWS_PATH = "/EWS/Exchange.asmx"

#: MessageText of the EWS errors the emulator returns (as real Exchange words them).
MESSAGES: dict[str, str] = {
    "ErrorItemNotFound": "The specified object was not found in the store.",
    "ErrorFolderNotFound": "The specified folder could not be found in the store.",
    "ErrorFolderExists": "A folder with the specified name already exists.",
    "ErrorInvalidPropertySet": "The property set is invalid.",
    "ErrorInvalidIdMalformed": "Id is malformed.",
    "ErrorInvalidSyncStateData": "Synchronization state data is corrupt or otherwise invalid.",
    "ErrorIrresolvableConflict": "The send or update operation could not be performed because the change key "
                                 "passed in the request does not match the current change key for the item.",
    "ErrorChangeKeyRequiredForWriteOperations": "When making a request that requires a change key, such as an "
                                                "update, you must provide the change key.",
    "ErrorItemCorrupt": "The item is corrupt.",
    "ErrorServerBusy": "The server cannot service this request right now. Try again later.",
    "ErrorInternalServerError": "An internal server error occurred. The operation failed.",
    "ErrorInvalidOperation": "This operation is not supported by the emulator.",
    "ErrorSchemaValidation": "The request failed schema validation.",
}


def t(name: str) -> str:
    return f"{{{T}}}{name}"


def m(name: str) -> str:
    return f"{{{M}}}{name}"


class EwsFault(Exception):
    """A request-level failure, rendered as a SOAP Fault (HTTP 500)."""

    def __init__(self, code: str, message: str | None = None, back_off_ms: int | None = None) -> None:
        super().__init__(message or MESSAGES.get(code, code))
        self.code, self.back_off_ms = code, back_off_ms


class EwsError(Exception):
    """An error of one response message (ResponseClass="Error", HTTP 200)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or MESSAGES.get(code, code))
        self.code = code


def parse_request(body: bytes) -> tuple[etree._Element, etree._Element | None]:
    """(operation element, SOAP header or None) of a request; EwsFault for anything that is not one."""
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise EwsFault("ErrorSchemaValidation", f"The request is not valid XML: {exc}") from None
    soap_body = root.find(f"{{{SOAP}}}Body")
    if root.tag != f"{{{SOAP}}}Envelope" or soap_body is None or len(soap_body) == 0:
        raise EwsFault("ErrorSchemaValidation", "The request has no SOAP Body.")
    return soap_body[0], root.find(f"{{{SOAP}}}Header")


def _envelope() -> tuple[etree._Element, etree._Element]:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap=NSMAP)
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    etree.SubElement(header, t("ServerVersionInfo"), MajorVersion="15", MinorVersion="1", MajorBuildNumber="2507",
                     MinorBuildNumber="6", Version="Exchange2016")
    return env, etree.SubElement(env, f"{{{SOAP}}}Body")


def response(operation: str, messages: list[etree._Element]) -> bytes:
    """The serialized envelope of `m:<operation>Response` holding `messages`."""
    env, body = _envelope()
    resp = etree.SubElement(body, m(f"{operation}Response"))
    container = etree.SubElement(resp, m("ResponseMessages"))
    container.extend(messages)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def message(operation: str, error: EwsError | None = None) -> etree._Element:
    """One `m:<operation>ResponseMessage`: Success/NoError, or Error with the EWS code and text."""
    msg = etree.Element(m(f"{operation}ResponseMessage"), ResponseClass="Error" if error else "Success")
    if error is not None:
        etree.SubElement(msg, m("MessageText")).text = str(error)
    etree.SubElement(msg, m("ResponseCode")).text = error.code if error else "NoError"
    if error is not None:
        etree.SubElement(msg, m("DescriptiveLinkKey")).text = "0"
    return msg


def fault(exc: EwsFault) -> bytes:
    """A SOAP Fault in Exchange's shape; ErrorServerBusy carries BackOffMilliseconds in MessageXml."""
    env, body = _envelope()
    env.remove(env[0])  # Exchange sends no ServerVersionInfo with a fault
    node = etree.SubElement(body, f"{{{SOAP}}}Fault")
    code = etree.SubElement(node, "faultcode", nsmap={"a": E})
    code.text = f"a:{exc.code}"
    etree.SubElement(node, "faultstring", {"{http://www.w3.org/XML/1998/namespace}lang": "en-US"}).text = str(exc)
    detail = etree.SubElement(node, "detail")
    etree.SubElement(detail, f"{{{E}}}ResponseCode", nsmap={"e": E}).text = exc.code
    etree.SubElement(detail, f"{{{E}}}Message", nsmap={"e": E}).text = str(exc)
    if exc.back_off_ms is not None:
        xml = etree.SubElement(detail, t("MessageXml"))
        etree.SubElement(xml, t("Value"), Name="BackOffMilliseconds").text = str(exc.back_off_ms)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")

